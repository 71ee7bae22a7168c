import io
import json
import logging
import os
import secrets
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import override_settings
from pythonjsonlogger.json import JsonFormatter
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backend.observability.log_config import METRICS_LOGGER, json_formatter
from backend.observability.request_id import RequestIdLogFilter
from items.cache import item_cache
from tests.factories import ItemFactory, UserFactory
from tests.ports import free_port


def _unreachable(url: str, default_port: int) -> str | None:
    """Return a message when nothing listens at the URL's host and port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        return f"{host}:{port} ({error})"
    return None


def pytest_sessionstart(session):
    """Stop at once, naming the server, when PostgreSQL or Redis is down."""
    servers = [
        ("PostgreSQL", "DATABASE_URL", 5432),
        ("Redis", "REDIS_URL", 6379),
    ]
    for name, variable, port in servers:
        url = os.environ.get(variable, "")
        if url.startswith(("postgres", "redis")) and (problem := _unreachable(url, port)):
            pytest.exit(
                f"{name} is unreachable at {problem}. Start it, or point {variable} at a "
                f"running server (see README: Running against PostgreSQL and Redis).",
                returncode=3,
            )


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """A fresh key prefix per test: no test sees another's entries, and query
    counts can be asserted against the real Redis."""
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}
        for alias, config in settings.CACHES.items()
    }
    item_cache.reset()
    yield
    item_cache.reset()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def auth_client(user) -> APIClient:
    """A client that sends `Authorization: Token <key>`, as API programs do."""
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def item(db):
    return ItemFactory()


@pytest.fixture
def own_redis():
    """A Redis server of the test's own on a spare port, to stop or break: (process, port)."""
    from tests.test_cache_outage import start_redis, stop_redis

    port = free_port()
    process = start_redis(port)
    yield process, port
    stop_redis(process)


@pytest.fixture
def stored_item(transactional_db):
    """An item committed to the test database, so a server process sees it."""
    return ItemFactory()


@pytest.fixture
def stored_token(transactional_db) -> str:
    return Token.objects.create(user=UserFactory()).key


@pytest.fixture(scope="session", autouse=True)
def collected_static(tmp_path_factory):
    """Static files collected once, as the image build does, into a temporary STATIC_ROOT.

    whitenoise serves from there (and warns when the directory is missing); the
    container tests serve it to their server process.
    """
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", "--noinput", verbosity=0)
        yield root


@pytest.fixture(scope="session")
def production_environment() -> dict[str, str]:
    """The variables a production deploy sets (beyond its database and Redis); copy to change."""
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "items.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://items.example.com",
        "DJANGO_SECURE_SSL_REDIRECT": "true",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
        "LOG_LEVEL": "INFO",
        "METRICS_ENABLED": "true",
    }


class CapturedLog:
    """What a test's log handler received: the raw text, and its lines parsed as JSON."""

    def __init__(self):
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def json_log() -> CapturedLog:
    """Log records written during the test, formatted exactly as production formats them."""
    captured = CapturedLog()
    options = {key: value for key, value in json_formatter().items() if key != "()"}
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(RequestIdLogFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield captured
    root.removeHandler(handler)


@pytest.fixture
def emf_log() -> CapturedLog:
    """CloudWatch EMF records written during the test, one JSON document per line."""
    captured = CapturedLog()
    handler = logging.StreamHandler(captured.stream)
    metrics_logger = logging.getLogger(METRICS_LOGGER)
    metrics_logger.addHandler(handler)
    yield captured
    metrics_logger.removeHandler(handler)


@pytest.fixture
def drf_cycles(monkeypatch) -> list:
    """How many requests went through DRF's `initial()` (auth, permissions, throttles),
    rather than the anonymous read shortcut."""
    from items.views import ItemViewSet

    calls = []
    initial = ItemViewSet.initial
    monkeypatch.setattr(
        ItemViewSet, "initial", lambda self, *a, **k: [calls.append(1), initial(self, *a, **k)]
    )
    return calls
