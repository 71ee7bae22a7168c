"""/healthz and /readyz: cheap, never cached, answering the load balancer's checker."""

import socket
import time
from http import HTTPStatus

import pytest
from django.test import override_settings

from backend.cache import redis_breaker

pytestmark = pytest.mark.django_db

PRIVATE_IP_HOST = "10.0.1.23"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_liveness_is_ok_without_touching_a_dependency(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_responses_are_never_cached(client, path):
    cache_control = client.get(path)["Cache-Control"]

    assert {"no-cache", "no-store", "must-revalidate", "max-age=0"} <= {
        part.strip() for part in cache_control.split(",")
    }


def test_readiness_is_ok_when_the_database_and_the_cache_answer(client):
    response = client.get("/readyz")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def unreachable_redis() -> dict:
    """A CACHES setting whose Redis refuses connections."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


def test_readiness_stays_200_and_says_degraded_when_redis_is_down(client):
    with override_settings(CACHES=unreachable_redis()):
        response = client.get("/readyz")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "cache": "degraded"},
    }


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_answers_the_task_private_ip_as_host_but_the_api_does_not(client, path):
    assert client.get(path, HTTP_HOST=PRIVATE_IP_HOST).status_code == HTTPStatus.OK
    assert client.get("/api/items/", HTTP_HOST=PRIVATE_IP_HOST).status_code == (
        HTTPStatus.BAD_REQUEST
    )


@override_settings(SECURE_SSL_REDIRECT=True)
def test_health_over_plain_http_is_not_redirected_to_https(client):
    assert client.get("/healthz").status_code == HTTPStatus.OK
    assert client.get("/api/items/").status_code == HTTPStatus.MOVED_PERMANENTLY


def test_health_checks_write_no_access_line(client, json_log):
    client.get("/healthz")
    client.get("/readyz")

    assert json_log.lines() == []


def test_readiness_says_degraded_while_the_cache_breaker_is_open(client, settings):
    settings.CACHE_BREAKER_THRESHOLD = 1
    redis_breaker().record_failure()

    response = client.get("/readyz")

    assert response.json()["checks"]["cache"] == "degraded"


def test_readiness_probes_redis_once_the_breaker_cools_down_and_closes_it(client, settings):
    settings.CACHE_BREAKER_THRESHOLD = 1
    settings.CACHE_BREAKER_COOLDOWN = 0.05
    redis_breaker().record_failure()
    time.sleep(0.06)

    response = client.get("/readyz")

    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
    assert not redis_breaker().is_open


def test_a_failed_readiness_probe_counts_towards_the_cache_breaker(client, settings):
    settings.CACHE_BREAKER_THRESHOLD = 1
    with override_settings(CACHES=unreachable_redis()):
        client.get("/readyz")

    assert redis_breaker().is_open
