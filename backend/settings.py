"""Every setting of the service, read once from the environment.

The README's configuration table lists each variable. Defaults give the embedded
development setup (SQLite and an in-process cache); production supplies the rest.
"""

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from backend.connections import cache_config, database_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -----------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# No production default: a missing key must stop the process, never fall back.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value "
            "(production reads it from a secret; `make run` sets a development key)."
        )
    SECRET_KEY = "django-insecure-development-only"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "items",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data tier ------------------------------------------------------------------
# DATABASE_URL wins; otherwise the JSON secret Copilot injects (DB_SECRET);
# otherwise a SQLite file beside manage.py. See backend/connections.py.

DATABASES = {"default": database_config(env, default_sqlite=BASE_DIR / "db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL (or REDIS_HOST and friends) selects django-redis; unset, an
# in-process cache, so `make run` needs no server.
CACHES = {"default": cache_config(env)}

# --- Auth and i18n --------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- API ------------------------------------------------------------------------

# Largest request body the API parses; bigger bodies get 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES


def throttle_rate(variable: str, *, default: str) -> str | None:
    """A DRF rate such as `100/min` from the environment; empty turns the limit off."""
    rate = env.str(variable, default=default)
    if rate and not re.fullmatch(r"\d+/(s|sec|m|min|h|hour|d|day)", rate):
        raise ImproperlyConfigured(f"{variable}={rate!r} is not a rate such as 100/min.")
    return rate or None


REST_FRAMEWORK = {
    # Token first, so an anonymous write gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        env.str(
            "API_PERMISSION_CLASS",
            default="rest_framework.permissions.IsAuthenticatedOrReadOnly",
        )
    ],
    "DEFAULT_PARSER_CLASSES": ["backend.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "backend.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "backend.errors.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "backend.errors.api_exception_handler",
    # Counters live in the shared cache; see backend/throttling.py for the fail-open rule.
    "DEFAULT_THROTTLE_CLASSES": [
        "backend.throttling.AnonRateThrottle",
        "backend.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": throttle_rate("API_THROTTLE_ANON_RATE", default="100/min"),
        "user": throttle_rate("API_THROTTLE_USER_RATE", default="1000/min"),
    },
    # Proxies whose X-Forwarded-For entry to trust for a client's address: the ALB is one.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=1),
}

# With it on, PUT, PATCH and DELETE without If-Match get 428 (lost-update protection).
API_REQUIRE_IF_MATCH = env.bool("API_REQUIRE_IF_MATCH", default=False)

SPECTACULAR_SETTINGS = {
    "TITLE": "Items API",
    "DESCRIPTION": "Create, read, update and delete items. Reads are cached in Redis.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc assets come from this service, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
