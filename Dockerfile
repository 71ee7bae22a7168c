# syntax=docker/dockerfile:1
# The production image: gunicorn serving Django on port 8000, as a non-root user.
# Build: docker build -t items-api .   Run: see README, "Container".

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the pinned requirements into a virtual environment -----------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY requirements.txt /tmp/requirements.txt
# Binary wheels only: the image has no compiler, and none is needed.
RUN pip install --only-binary=:all: -r /tmp/requirements.txt

# --- runtime: the virtual environment, the code and the collected static files ---
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=backend.settings \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PORT=8000

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . .

# Static files (admin, Swagger UI, Redoc) are collected at build time, owned by
# root and so read-only for the app user; whitenoise serves them. The key only
# lets settings load here and is never used at run time; the step needs no database.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret DJANGO_ALLOW_NO_DATABASE=1 \
    python manage.py collectstatic --noinput

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/app/bin/healthcheck"]

CMD ["/app/bin/start"]
