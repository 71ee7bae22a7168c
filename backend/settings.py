"""Every setting of the service, read once from the environment.

The README's configuration table lists each variable. Defaults give the embedded
development setup (SQLite and an in-process cache); production supplies the rest.
"""

import os
import re
from collections import ChainMap
from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

from backend.connections import caches_config, database_config
from backend.observability.log_config import logging_config, skip_unlogged_record_fields

BASE_DIR = Path(__file__).resolve().parent.parent


class Env(environ.Env):
    """django-environ's Env over the real environment, with .env's values beneath it.

    read_env() fills the first map only with names the environment lacks, so real variables
    win, and os.environ stays as it was: a process started from here (`manage.py test`'s
    pytest) sees the real environment, never the file's values.
    """

    ENVIRON = ChainMap({}, os.environ)


env = Env()

# .env beside manage.py holds development values (`make run` writes it; git and the image
# leave it out). manage.py turns this on, so every management command in any terminal shares
# the dev server's settings; gunicorn, pytest and plain imports never read the file.
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(BASE_DIR / ".env")

# `manage.py test` runs the pytest suite with pytest's own configuration.
TEST_RUNNER = "backend.test_runner.PytestTestRunner"

# --- Core -----------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# No production default: a missing key must stop the process, never fall back.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value "
            "(production reads it from a secret; `make run` writes a development key to .env)."
        )
    # Development only: DEBUG is on.
    SECRET_KEY = "django-insecure-development-only"  # nosec B105

# AWS Copilot gives a Load Balanced Web Service's tasks their load balancer's DNS name: that
# exact name is allowed, never a wildcard such as .elb.amazonaws.com, which every load
# balancer anyone creates matches. Such a task has no use for the development hosts.
_copilot_lb_dns = env.list("COPILOT_LB_DNS", default=[])
ALLOWED_HOSTS = [
    *env.list(
        "DJANGO_ALLOWED_HOSTS",
        default=[] if _copilot_lb_dns else ["localhost", "127.0.0.1"],
    ),
    *_copilot_lb_dns,
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "corsheaders",
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
    # CorsMiddleware goes here when origins are allowed (below).
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "backend.lazy_messages.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]

# Behind API Gateway (infra/): the headers it writes for the caller's address and the host
# it was asked for (backend/gateway_headers.py). Empty, the middleware is not installed.
API_CLIENT_IP_HEADER = env.str("API_CLIENT_IP_HEADER", default="")
DJANGO_HOST_HEADER = env.str("DJANGO_HOST_HEADER", default="")
if API_CLIENT_IP_HEADER or DJANGO_HOST_HEADER:
    MIDDLEWARE.insert(0, "backend.gateway_headers.GatewayHeadersMiddleware")

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
# otherwise, with DEBUG on, a SQLite file beside manage.py; otherwise the process
# refuses to start, unless DJANGO_ALLOW_NO_DATABASE says the command needs none
# (the image build's collectstatic). See backend/connections.py.

DATABASES = {"default": database_config(env, default_sqlite=BASE_DIR / "db.sqlite3", debug=DEBUG)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL (or REDIS_HOST and friends) selects django-redis; unset, an
# in-process cache, so `make run` needs no server.
CACHES = caches_config(env)
# django-redis looks this up at the end of every request, for each cache in use; set, the
# lookup finds it instead of failing. False: connections are kept between requests.
DJANGO_REDIS_CLOSE_CONNECTION = False

# The read cache's protocol (backend/cache/); seconds unless named otherwise.
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

# Failed logins (the admin's form) are counted per client address by django-axes
# (https://django-axes.readthedocs.io/en/latest/4_configuration.html). Its backend
# comes first and refuses any login, even a correct one, while the address is locked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# In PostgreSQL, which every task shares and a login needs anyway; the cache would
# forget the counts in a Redis outage and its fail-open rule would lift the limit.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
# Failures older than this are forgotten, and a lock lifts this long after the last one.
AXES_COOLOFF_TIME = timedelta(minutes=env.float("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() <= 0:
    # django-axes reads a zero cool-off as a lock that never lifts.
    raise ImproperlyConfigured(
        "ADMIN_LOGIN_FAILURE_LIMIT and ADMIN_LOGIN_COOLOFF_MINUTES must be above 0."
    )
# By address alone: locking a user name would let anyone lock its owner out.
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
# The address the rate limits use (API_NUM_PROXIES), so a client cannot reset its
# count with an X-Forwarded-For header of its own.
AXES_CLIENT_IP_CALLABLE = "backend.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "backend.login_lockout.lockout_response"

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
# Seconds from a request's arrival within which its body must have arrived, once the
# API reads it; a slower client gets 408 and the connection closes (backend/wsgi.py).
API_BODY_TIMEOUT_SECONDS = env.float("API_BODY_TIMEOUT_SECONDS", default=10.0)


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
    # Proxies whose X-Forwarded-For entry to trust for a client's address. 0, the
    # socket's address, by default: reached directly (`docker run -p`, a misrouted
    # port), the service would otherwise let a client pick its address with the
    # header. The manifests set the count their topology has (1 behind the ALB).
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
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

# --- Browser clients on other origins (CORS) ---------------------------------------
# https://github.com/adamchainz/django-cors-headers#configuration

# e.g. https://app.example.com; none by default, so no other origin's script may read
# a response. Token authentication travels in a header, so no credentials (cookies)
# are allowed cross-origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# Installed only when an origin is allowed: with none it would add nothing but `Vary: origin`,
# at about 7 % of a cache hit's instructions (make bench-instructions).
CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"


def with_cors(middleware: list[str]) -> list[str]:
    """`middleware` with CorsMiddleware before anything that can answer on its own (an HTTPS
    redirect, a static file, CommonMiddleware), so those answers carry CORS headers too."""
    position = middleware.index("django.middleware.security.SecurityMiddleware")
    return [*middleware[:position], CORS_MIDDLEWARE, *middleware[position:]]


if CORS_ALLOWED_ORIGINS:
    MIDDLEWARE = with_cors(MIDDLEWARE)
CORS_URLS_REGEX = r"^/api/"
# The conditional request headers the API honours (README: conditional requests).
CORS_ALLOW_HEADERS = (*default_headers, "if-match", "if-none-match", "if-modified-since")
# Response headers a script may read beyond the CORS-safelisted ones.
CORS_EXPOSE_HEADERS = ["etag", "location", "x-cache", "x-request-id", "retry-after"]

# --- Security: HTTPS ends at the load balancer ------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/

# The header the proxy in front sets to "https" for a request that reached it over TLS: the
# load balancer's X-Forwarded-Proto, the only client the tasks admit. Behind API Gateway and
# a load balancer speaking HTTP (infra/), the gateway's own header, since the load balancer
# rewrites X-Forwarded-Proto to the scheme of its own hop.
_https_header = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto")
SECURE_PROXY_SSL_HEADER = ("HTTP_" + _https_header.upper().replace("-", "_"), "https")
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
skip_unlogged_record_fields()
# django-axes announces its configuration at INFO on every start, each command's too.
LOGGING["loggers"]["axes.apps"] = {"level": "WARNING"}

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
