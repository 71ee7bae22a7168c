"""Every setting of the service, read once from the environment.

The README's configuration table lists each variable. Defaults give the embedded
development setup (SQLite and an in-process cache); production supplies the rest.
"""

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from backend.connections import caches_config, database_config
from backend.observability.log_config import logging_config

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
    "items.apps.ItemsConfig",
]

MIDDLEWARE = [
    # Health checks first: the load balancer's checker sends the task's IP as Host.
    "backend.health.HealthCheckMiddleware",
    "backend.observability.request_id.RequestIdMiddleware",
    "backend.observability.access.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
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
        # Project overrides of third-party templates (the offline Redoc page).
        "DIRS": [BASE_DIR / "templates"],
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
CACHES = caches_config(env)

# The read cache's protocol (backend/cache.py); seconds unless named otherwise.
CACHE_ENABLED = env.bool("CACHE_ENABLED", default=True)
CACHE_TTL = env.float("CACHE_TTL", default=300)
CACHE_NEGATIVE_TTL = env.float("CACHE_NEGATIVE_TTL", default=30)
# Must exceed the longest gap between a read's load and its fill that the
# service tolerates; slower fills are dropped rather than trusted.
CACHE_TOMBSTONE_TTL = env.float("CACHE_TOMBSTONE_TTL", default=10)
CACHE_LOCK_WAIT = env.float("CACHE_LOCK_WAIT", default=0.1)
CACHE_BREAKER_THRESHOLD = env.int("CACHE_BREAKER_THRESHOLD", default=3)
CACHE_BREAKER_COOLDOWN = env.float("CACHE_BREAKER_COOLDOWN", default=5)

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

# --- Static files -----------------------------------------------------------------
# Collected at image build time and served, compressed, by whitenoise: the admin,
# Swagger UI and Redoc. Names stay unhashed (whitenoise then allows a 60 s browser
# cache): no manifest is needed, so the test client and the live server used by the
# browser tests find every file without a collect step. Their URLs carry the request's
# path prefix, an API Gateway stage's (backend/static_storage.py).

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "backend.static_storage.PrefixedStaticFilesStorage"},
}

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

# --- Security: HTTPS ends at the load balancer ------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/

# The load balancer sets X-Forwarded-Proto; only it can reach the tasks.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Off by default: behind an API Gateway that reaches the load balancer over HTTP,
# a redirect here would loop. Production behind an HTTPS listener turns it on.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# Sent on HTTPS responses only, so harmless on plain-HTTP development servers.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a commitment for the whole domain: opt in explicitly.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
# e.g. https://items.example.com, for the admin's login form behind the HTTPS listener.
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Logs and metrics ---------------------------------------------------------------
# One JSON object per line on stdout (backend/observability/log_config.py); the
# awslogs driver ships it to CloudWatch Logs. docs/operations.md lists the fields.

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = logging_config(LOG_LEVEL)

# CloudWatch Embedded Metric Format lines: latency, counts, query counts and cache
# outcomes of requests (backend/observability/metrics.py).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=not DEBUG)
METRICS_NAMESPACE = env.str("METRICS_NAMESPACE", default="ItemsApi")
METRICS_ENVIRONMENT = env.str(
    "METRICS_ENVIRONMENT", default=env.str("COPILOT_ENVIRONMENT_NAME", default="local")
)
# Requests are aggregated per route and status class and written this often per process.
METRICS_FLUSH_INTERVAL = env.float("METRICS_FLUSH_INTERVAL_SECONDS", default=10.0)
# The cache engine's process-wide counters, emitted as deltas at most this often.
METRICS_CACHE_STATS = "backend.cache.cache_stats"
METRICS_CACHE_STATS_INTERVAL = env.float("METRICS_CACHE_STATS_INTERVAL_SECONDS", default=60.0)
