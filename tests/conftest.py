import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from items.cache import item_cache
from tests.factories import ItemFactory, UserFactory


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
