"""Settings built from the environment: database, cache and the secret-key guard."""

import json
import os
import subprocess
import sys
from pathlib import Path

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from backend.connections import caches_config, database_config, redis_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQLITE = Path("/tmp/default.sqlite3")


def env_of(**variables) -> environ.Env:
    """An `environ.Env` that reads only the given variables."""
    env = environ.Env()
    env.ENVIRON = variables
    return env


def test_in_development_without_database_url_the_default_is_sqlite():
    assert database_config(env_of(), default_sqlite=SQLITE, debug=True) == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(SQLITE),
    }


def test_outside_development_a_missing_database_is_refused_naming_the_variables():
    with pytest.raises(ImproperlyConfigured) as refused:
        database_config(env_of(), default_sqlite=SQLITE)

    message = str(refused.value)
    for variable in ("DATABASE_URL", "DB_SECRET", "DJANGO_DEBUG", "DJANGO_ALLOW_NO_DATABASE"):
        assert variable in message


def test_a_command_that_needs_no_database_gets_the_backend_that_refuses_every_query():
    config = database_config(env_of(DJANGO_ALLOW_NO_DATABASE="1"), default_sqlite=SQLITE)

    assert config == {"ENGINE": "django.db.backends.dummy"}


def test_allowing_no_database_never_replaces_a_configured_one():
    config = database_config(
        env_of(DJANGO_ALLOW_NO_DATABASE="1", DATABASE_URL="postgres://app@db.internal/items"),
        default_sqlite=SQLITE,
    )

    assert (config["ENGINE"], config["HOST"]) == ("django.db.backends.postgresql", "db.internal")


def test_database_url_configures_postgres_with_persistent_checked_connections():
    config = database_config(
        env_of(DATABASE_URL="postgres://app:pw@db.internal:5433/items", DB_SSLMODE="require"),
        default_sqlite=SQLITE,
    )

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "items")
    assert (config["USER"], config["PASSWORD"]) == ("app", "pw")
    assert config["CONN_MAX_AGE"] == 60
    assert config["CONN_HEALTH_CHECKS"] is True
    assert config["OPTIONS"] == {
        "connect_timeout": 5,
        "options": "-c statement_timeout=5000",
        "sslmode": "require",
    }


def test_a_proxy_in_front_of_the_database_replaces_only_the_secrets_host():
    secret = {"host": "writer.rds.amazonaws.com", "username": "items", "password": "pw"}

    config = database_config(
        env_of(DB_SECRET=json.dumps(secret), DB_HOST="items.proxy-abc.rds.amazonaws.com"),
        default_sqlite=SQLITE,
    )

    assert (config["HOST"], config["USER"], config["PASSWORD"]) == (
        "items.proxy-abc.rds.amazonaws.com",
        "items",
        "pw",
    )


def test_the_rds_secret_json_configures_postgres():
    secret = {
        "host": "cluster.rds.amazonaws.com",
        "port": 5432,
        "dbname": "items",
        "username": "items_admin",
        "password": "p@ss:word/",
        "engine": "postgres",
    }
    config = database_config(
        env_of(
            DB_SECRET=json.dumps(secret),
            DB_SSLMODE="verify-full",
            DB_SSLROOTCERT="/etc/ssl/rds-global-bundle.pem",
        ),
        default_sqlite=SQLITE,
    )

    assert {k: config[k] for k in ("ENGINE", "HOST", "PORT", "NAME", "USER", "PASSWORD")} == {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "cluster.rds.amazonaws.com",
        "PORT": "5432",
        "NAME": "items",
        "USER": "items_admin",
        "PASSWORD": "p@ss:word/",
    }
    assert config["OPTIONS"]["sslmode"] == "verify-full"
    assert config["OPTIONS"]["sslrootcert"] == "/etc/ssl/rds-global-bundle.pem"


def test_without_redis_the_cache_is_in_process():
    caches = caches_config(env_of())

    assert {config["BACKEND"] for config in caches.values()} == {
        "django.core.cache.backends.locmem.LocMemCache"
    }


def test_redis_url_selects_django_redis_with_json_and_short_timeouts():
    config = caches_config(env_of(REDIS_URL="redis://127.0.0.1:6379/0"))["default"]

    assert config["BACKEND"] == "django_redis.cache.RedisCache"
    assert config["KEY_PREFIX"] == "items-api"
    options = config["OPTIONS"]
    assert options["SERIALIZER"] == "django_redis.serializers.json.JSONSerializer"
    assert options["PARSER_CLASS"] == "redis.connection._HiredisParser"
    assert options["SOCKET_CONNECT_TIMEOUT"] == options["SOCKET_TIMEOUT"] == 0.2
    assert options["CONNECTION_POOL_KWARGS"]["max_connections"] == 50


def test_the_release_is_in_no_cache_prefix():
    """Old and new tasks of a rolling deploy share the keys their invalidations reach."""
    redis = "redis://127.0.0.1:6379/0"
    v1, v2 = (caches_config(env_of(REDIS_URL=redis, APP_RELEASE=r)) for r in ("v1", "v2"))

    assert v1 == v2
    assert (v1["default"]["KEY_PREFIX"], v1["throttle"]["KEY_PREFIX"]) == (
        "items-api",
        "items-api-throttle",
    )
    assert v1["throttle"]["LOCATION"] == v1["default"]["LOCATION"]


def test_elasticache_endpoint_and_token_become_a_tls_url():
    env = env_of(REDIS_HOST="master.cache.amazonaws.com", REDIS_AUTH_TOKEN="t/k:n@")

    assert redis_url(env) == "rediss://:t%2Fk%3An%40@master.cache.amazonaws.com:6379/0"


def run_settings(**variables) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], **variables}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**environment, "DJANGO_SETTINGS_MODULE": "backend.settings"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_a_secret_key_and_debug_off_the_process_refuses_to_start():
    result = run_settings()

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_with_a_secret_key_the_process_starts():
    result = run_settings(
        DJANGO_SECRET_KEY="x" * 50, DATABASE_URL="postgres://app@db.internal/items"
    )

    assert result.returncode == 0, result.stderr
