"""Production settings: `check --deploy` is clean, and the data tier is reached safely.

Each test builds the settings in a fresh process from environment variables, as
a Fargate task does.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.factories import ItemFactory
from tests.ports import free_port
from tests.project_copy import environment_without_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A production task always names its database (settings refuse to start otherwise);
# tests that only build settings name one they never reach.
UNREACHED_DATABASE = {"DATABASE_URL": "postgres://app@db.internal:5432/items"}


def run_django(environment: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        env={**environment_without_settings(), **UNREACHED_DATABASE, **environment},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def settings_as_json(environment: dict, *names: str) -> dict:
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = run_django({**environment, "DJANGO_SETTINGS_MODULE": "backend.settings"}, "-c", script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def run_with_django(environment: dict, code: str) -> subprocess.CompletedProcess:
    script = "import django; django.setup()\n" + code
    return run_django({**environment, "DJANGO_SETTINGS_MODULE": "backend.settings"}, "-c", script)


# --- check --deploy ------------------------------------------------------------------


def test_check_deploy_reports_nothing_with_production_variables(production_environment):
    result = run_django(
        production_environment, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy_names_what_a_bare_environment_lacks():
    result = run_django(
        {"DJANGO_SECRET_KEY": "short"}, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"
    )

    assert result.returncode != 0
    for warning in ("security.W008", "security.W009", "security.W021"):
        assert warning in result.stderr


def test_https_ends_at_the_load_balancer_and_cookies_are_secure(production_environment):
    assert settings_as_json(
        production_environment,
        "DEBUG",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_HTTPONLY",
        "CSRF_TRUSTED_ORIGINS",
        "ALLOWED_HOSTS",
    ) == {
        "DEBUG": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_TRUSTED_ORIGINS": ["https://items.example.com"],
        "ALLOWED_HOSTS": ["items.example.com"],
    }


def test_log_level_and_metrics_come_from_the_environment(production_environment):
    environment = {
        **production_environment,
        "LOG_LEVEL": "warning",
        "METRICS_ENABLED": "false",
        "METRICS_NAMESPACE": "Shop",
        "COPILOT_ENVIRONMENT_NAME": "prod",
    }

    values = settings_as_json(
        environment, "LOG_LEVEL", "METRICS_ENABLED", "METRICS_NAMESPACE", "METRICS_ENVIRONMENT"
    )

    assert values == {
        "LOG_LEVEL": "WARNING",
        "METRICS_ENABLED": False,
        "METRICS_NAMESPACE": "Shop",
        "METRICS_ENVIRONMENT": "prod",
    }


# --- PostgreSQL: statement timeout and TLS -----------------------------------------


@pytest.fixture
def database_url(db) -> str:
    """The test database as a URL a separate process can use."""
    settings_dict = connection.settings_dict
    credentials = quote(settings_dict["USER"], safe="")
    if settings_dict.get("PASSWORD"):
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"


def test_a_slow_statement_is_cancelled_by_the_statement_timeout(
    production_environment, database_url
):
    result = run_with_django(
        {**production_environment, "DATABASE_URL": database_url, "DB_STATEMENT_TIMEOUT_MS": "100"},
        "from django.db import connection\nconnection.cursor().execute('SELECT pg_sleep(2)')\n",
    )

    assert result.returncode != 0
    assert "canceling statement due to statement timeout" in result.stderr


def server_has_tls() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW ssl")
        return cursor.fetchone()[0] == "on"


def test_sslmode_require_never_falls_back_to_plaintext(production_environment, database_url):
    """With DB_SSLMODE=require the connection is encrypted, or there is none."""
    result = run_with_django(
        {**production_environment, "DATABASE_URL": database_url, "DB_SSLMODE": "require"},
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')\n"
        "    print(cursor.fetchone()[0])\n",
    )

    if server_has_tls():
        assert (result.returncode, result.stdout.strip()) == (0, "True"), result.stderr
    else:
        assert result.returncode != 0
        assert "server does not support SSL, but SSL was required" in result.stderr


# --- Redis: TLS with an AUTH token, as ElastiCache in-transit encryption needs -------


@pytest.fixture
def tls_redis(tmp_path):
    """A Redis of this test's own that speaks only TLS and requires an AUTH token."""
    redis_server, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if not (redis_server and openssl):
        pytest.skip("redis-server and openssl are needed to run a TLS Redis")
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    port, token = free_port(), "elasticache-auth-token-0123456789"
    process = subprocess.Popen(
        [
            *(redis_server, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
            *("--requirepass", token, "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield {"port": port, "token": token, "ca": cert}
    process.terminate()
    process.wait(timeout=10)


ROUND_TRIP = (
    "from django.core.cache import cache\n"
    "cache.set('tls-probe', 'through TLS', 30)\n"
    "print(cache.get('tls-probe'))\n"
)


def elasticache_environment(production_environment: dict, tls_redis: dict, **overrides) -> dict:
    return {
        **production_environment,
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(tls_redis["port"]),
        "REDIS_AUTH_TOKEN": tls_redis["token"],
        # The test's own certificate authority; ElastiCache's is in the system store.
        "SSL_CERT_FILE": str(tls_redis["ca"]),
        "REDIS_TIMEOUT_SECONDS": "2",
        **overrides,
    }


def test_the_cache_reaches_redis_over_tls_with_the_auth_token(production_environment, tls_redis):
    result = run_with_django(elasticache_environment(production_environment, tls_redis), ROUND_TRIP)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "through TLS"


@pytest.mark.parametrize(
    "overrides",
    [{"REDIS_TLS": "false"}, {"REDIS_AUTH_TOKEN": "wrong-token"}, {"SSL_CERT_FILE": "/dev/null"}],
    ids=["plaintext", "wrong-token", "untrusted-certificate"],
)
def test_the_cache_refuses_plaintext_a_wrong_token_or_an_untrusted_server(
    production_environment, tls_redis, overrides
):
    environment = elasticache_environment(production_environment, tls_redis, **overrides)

    result = run_with_django(environment, ROUND_TRIP)

    assert result.returncode != 0
    assert "through TLS" not in result.stdout


# --- Behind API Gateway and an HTTP load balancer (infra/) -------------------------------


def test_the_https_marker_header_can_be_the_gateways_own(production_environment):
    environment = {
        **production_environment,
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Items-Forwarded-Proto",
    }

    assert settings_as_json(environment, "SECURE_PROXY_SSL_HEADER") == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_ITEMS_FORWARDED_PROTO", "https"]
    }


@pytest.mark.django_db
def test_links_are_https_when_the_gateway_says_so_whatever_the_load_balancer_wrote(
    client, settings
):
    """The load balancer behind API Gateway writes X-Forwarded-Proto: http for its own hop."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_ITEMS_FORWARDED_PROTO", "https")
    ItemFactory.create_batch(2)

    through_the_gateway = client.get(
        "/api/items/?page_size=1",
        HTTP_X_FORWARDED_PROTO="http",
        HTTP_X_ITEMS_FORWARDED_PROTO="https",
    )
    around_it = client.get("/api/items/?page_size=1", HTTP_X_FORWARDED_PROTO="https")

    assert through_the_gateway.json()["next"].startswith("https://")
    assert around_it.json()["next"].startswith("http://")
