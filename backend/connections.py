"""Database and cache configuration built from environment variables.

Kept apart from settings.py so that the mapping from a deploy's environment (a
plain URL locally, the JSON secret and endpoint variables Copilot injects on AWS)
to Django's DATABASES and CACHES entries can be tested as plain functions.
"""

import json
from pathlib import Path
from urllib.parse import quote

import environ
from django.core.exceptions import ImproperlyConfigured

POSTGRES_ENGINE = "django.db.backends.postgresql"


def database_config(env: environ.Env, *, default_sqlite: Path, debug: bool = False) -> dict:
    """Return the DATABASES["default"] entry for this environment.

    Without DATABASE_URL or DB_SECRET only development (`debug`) gets a SQLite
    file. Elsewhere a task with its database settings missing would serve an empty
    database of its own and report itself ready, so it refuses to start instead,
    unless the command says it needs no database (DJANGO_ALLOW_NO_DATABASE).
    """
    if url := env.str("DATABASE_URL", default=""):
        config = environ.Env.db_url_config(url)
    elif secret := env.str("DB_SECRET", default=""):
        config = _database_from_secret(json.loads(secret))
        # The secret names Aurora's writer; a proxy in front of it (RDS Proxy) is another host.
        config["HOST"] = env.str("DB_HOST", default=config["HOST"])
    elif debug:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)}
    elif env.bool("DJANGO_ALLOW_NO_DATABASE", default=False):
        # Django's placeholder backend: every query fails, so a command that
        # turns out to need the database stops instead of using the wrong one.
        return {"ENGINE": "django.db.backends.dummy"}
    else:
        raise ImproperlyConfigured(
            "No database is configured: set DATABASE_URL (a URL such as "
            "postgres://user:password@host:5432/items) or DB_SECRET (the RDS secret's "
            "JSON). DJANGO_DEBUG=1 uses a local SQLite file instead; a command that needs "
            "no database (collectstatic, makemigrations --check) sets "
            "DJANGO_ALLOW_NO_DATABASE=1."
        )
    if config["ENGINE"] == POSTGRES_ENGINE:
        config.update(_postgres_tuning(env))
        config["OPTIONS"] = {**config.get("OPTIONS", {}), **_postgres_options(env)}
    return config


def _database_from_secret(secret: dict) -> dict:
    """Map the RDS-generated secret (host, port, dbname, username, password)."""
    return {
        "ENGINE": POSTGRES_ENGINE,
        "HOST": secret["host"],
        "PORT": str(secret.get("port", 5432)),
        "NAME": secret.get("dbname", "postgres"),
        "USER": secret["username"],
        "PASSWORD": secret["password"],
    }


def _postgres_tuning(env: environ.Env) -> dict:
    return {
        # Persistent connections, checked before reuse so a failover or an idle
        # disconnect costs one reconnect instead of a failed request.
        "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
    }


def _postgres_options(env: environ.Env) -> dict:
    options = {
        "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=5),
        # One slow statement must not hold a worker for longer than this.
        "options": f"-c statement_timeout={env.int('DB_STATEMENT_TIMEOUT_MS', default=5000)}",
    }
    if sslmode := env.str("DB_SSLMODE", default=""):
        options["sslmode"] = sslmode
    if sslrootcert := env.str("DB_SSLROOTCERT", default=""):
        options["sslrootcert"] = sslrootcert
    return options


def redis_url(env: environ.Env) -> str:
    """REDIS_URL, or a URL assembled from ElastiCache's endpoint and AUTH token."""
    if url := env.str("REDIS_URL", default=""):
        return url
    host = env.str("REDIS_HOST", default="")
    if not host:
        return ""
    scheme = "rediss" if env.bool("REDIS_TLS", default=True) else "redis"
    token = env.str("REDIS_AUTH_TOKEN", default="")
    credentials = f":{quote(token, safe='')}@" if token else ""
    return f"{scheme}://{credentials}{host}:{env.int('REDIS_PORT', default=6379)}/0"


def caches_config(env: environ.Env) -> dict:
    """Return CACHES: `default` for the read cache, `throttle` for the rate-limit counters.

    Both use the same Redis (django-redis keeps one connection pool per URL). Neither
    prefix names the release: during a rolling deploy old and new tasks must see each
    other's invalidations and count each client together. What a release stores carries
    its schema instead (items/cache.py).
    """
    prefix = env.str("CACHE_KEY_PREFIX", default="items-api")
    return {
        "default": cache_config(env, prefix),
        "throttle": cache_config(env, f"{prefix}-throttle"),
    }


def cache_config(env: environ.Env, prefix: str) -> dict:
    """One CACHES entry: django-redis when Redis is configured, else in-process memory."""
    url = redis_url(env)
    if not url:
        return {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": prefix,
            "KEY_PREFIX": prefix,
        }
    timeout = env.float("REDIS_TIMEOUT_SECONDS", default=0.2)
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
        "OPTIONS": {
            "PARSER_CLASS": "redis.connection._HiredisParser",
            # Values are JSON, never pickle: a pickled value read from a shared
            # Redis would run code on load.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": timeout,
            "SOCKET_TIMEOUT": timeout,
            "CONNECTION_POOL_KWARGS": {
                "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=50),
                "retry_on_timeout": False,
            },
        },
    }
