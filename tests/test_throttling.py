"""Rate limits kept in Redis: 429 with Retry-After, separate rates, and failing open."""

import logging
import socket
import time
import uuid
from http import HTTPStatus

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from backend.throttling import AnonRateThrottle, _FixedWindow
from tests.test_configuration import run_settings

pytestmark = pytest.mark.django_db

LIST_URL = "/api/items/"
RATES = {"anon": "3/min", "user": "5/min"}


def _rest_framework(**overrides) -> dict:
    return {**settings.REST_FRAMEWORK, **overrides}


def _cache_at(location: str, prefix: str) -> dict:
    return {
        alias: {**config, "LOCATION": location, "KEY_PREFIX": f"{prefix}:{alias}"}
        for alias, config in settings.CACHES.items()
    }


@pytest.fixture
def cache_prefix() -> str:
    return f"test-throttle-{uuid.uuid4().hex}"


@pytest.fixture
def low_rates(cache_prefix):
    """Small limits and counters of their own, in the real Redis."""
    location = settings.CACHES["default"]["LOCATION"]
    with override_settings(
        REST_FRAMEWORK=_rest_framework(DEFAULT_THROTTLE_RATES=RATES),
        CACHES=_cache_at(location, cache_prefix),
    ):
        yield
    client = redis.Redis.from_url(location)
    for key in client.scan_iter(match=f"{cache_prefix}:*"):
        client.delete(key)


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def throttles_healthy(monkeypatch):
    """Start each test from a process whose throttles last saw the cache working."""
    monkeypatch.setattr(_FixedWindow, "failing_open", False)


def throttling_messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "backend.throttling"]


def statuses(client, count: int, **headers) -> list[int]:
    return [client.get(LIST_URL, **headers).status_code for _ in range(count)]


def test_anonymous_clients_get_429_with_retry_after_past_their_rate(api_client, low_rates):
    assert statuses(api_client, 3) == [HTTPStatus.OK] * 3

    response = api_client.get(LIST_URL)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response["Content-Type"] == "application/problem+json"
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert body == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "code": "throttled",
        "detail": body["detail"],
        "request_id": response["X-Request-ID"],
    }
    assert body["detail"].startswith("Request was throttled.")


def test_authenticated_users_have_their_own_rate(api_client, auth_client, low_rates):
    statuses(api_client, 3)  # the anonymous budget of this address is spent

    assert statuses(auth_client, 6) == [HTTPStatus.OK] * 5 + [HTTPStatus.TOO_MANY_REQUESTS]


def test_writes_count_against_the_same_rate(auth_client, low_rates):
    for _ in range(5):
        auth_client.post(LIST_URL, {"name": "x", "price": "1.00"}, format="json")

    response = auth_client.post(LIST_URL, {"name": "x", "price": "1.00"}, format="json")

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_the_counters_live_in_redis_where_every_process_sees_them(
    api_client, low_rates, cache_prefix, monkeypatch
):
    now = time.time()
    monkeypatch.setattr(AnonRateThrottle, "timer", staticmethod(lambda: now))
    statuses(api_client, 2)

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    keys = [key.decode() for key in client.scan_iter(match=f"{cache_prefix}:*")]
    assert keys == [f"{cache_prefix}:throttle:1:throttle_anon_127.0.0.1:{int(now // 60)}"]
    assert client.get(keys[0]) == b"2"
    assert 0 < client.ttl(keys[0]) <= 61


def test_a_new_window_brings_a_fresh_budget_and_retry_after_counts_down_to_it(
    api_client, low_rates, monkeypatch
):
    now = [6_000_000.0]  # the start of a minute
    monkeypatch.setattr(AnonRateThrottle, "timer", staticmethod(lambda: now[0]))

    assert statuses(api_client, 3) == [HTTPStatus.OK] * 3
    now[0] += 45.5
    denied = api_client.get(LIST_URL)
    now[0] += 14.5  # the next minute
    allowed_again = statuses(api_client, 3)

    assert denied.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert denied["Retry-After"] == "15"
    assert allowed_again == [HTTPStatus.OK] * 3


def test_clients_behind_the_load_balancer_are_told_apart_by_its_forwarded_address(
    api_client, low_rates, settings
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # the manifests' count

    def via_alb(client_address: str, spoofed: str = "203.0.113.9") -> dict:
        return {"HTTP_X_FORWARDED_FOR": f"{spoofed}, {client_address}"}

    first = statuses(api_client, 4, **via_alb("198.51.100.1"))
    # A made-up leftmost entry buys no fresh budget; another client has its own.
    spoofed = statuses(api_client, 1, **via_alb("198.51.100.1", spoofed="192.0.2.77"))
    other = statuses(api_client, 1, **via_alb("198.51.100.2"))

    too_many, ok = HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.OK
    assert (first, spoofed, other) == ([ok, ok, ok, too_many], [too_many], [ok])


def test_with_redis_unreachable_requests_pass_and_the_log_says_so_once(
    api_client, auth_client, closed_port, cache_prefix, throttles_healthy, caplog
):
    dead_redis = _cache_at(f"redis://127.0.0.1:{closed_port}/0", cache_prefix)
    with (
        override_settings(
            REST_FRAMEWORK=_rest_framework(
                DEFAULT_THROTTLE_RATES={"anon": "1/min", "user": "1/min"}
            ),
            CACHES=dead_redis,
        ),
        caplog.at_level(logging.WARNING, logger="backend.throttling"),
    ):
        anonymous = statuses(api_client, 3)
        authenticated = statuses(auth_client, 3)

    assert anonymous == authenticated == [HTTPStatus.OK] * 3
    assert throttling_messages(caplog) == ["Throttling is off: the cache is unavailable"]


def test_throttling_resumes_and_says_so_when_redis_answers_again(
    api_client, closed_port, cache_prefix, low_rates, throttles_healthy, caplog
):
    with caplog.at_level(logging.WARNING, logger="backend.throttling"):
        with override_settings(CACHES=_cache_at(f"redis://127.0.0.1:{closed_port}/0", "x")):
            statuses(api_client, 1)
        after = statuses(api_client, 4)

    assert after == [HTTPStatus.OK] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]
    assert throttling_messages(caplog) == [
        "Throttling is off: the cache is unavailable",
        "Throttling is back on: the cache answers again",
    ]


def test_a_malformed_rate_stops_the_process_at_start():
    result = run_settings(
        DJANGO_SECRET_KEY="x",
        DATABASE_URL="postgres://app@db.internal/items",
        API_THROTTLE_ANON_RATE="lots",
    )

    assert result.returncode != 0
    assert "API_THROTTLE_ANON_RATE='lots' is not a rate such as 100/min" in result.stderr


@pytest.mark.parametrize("num_proxies", [None, 0, 1, 2, 5])
@pytest.mark.parametrize(
    "forwarded_for",
    [None, "", "198.51.100.1", "203.0.113.9, 198.51.100.1", " 192.0.2.1 ,203.0.113.9,  10.0.0.1"],
)
def test_the_client_address_follows_drfs_rule(settings, num_proxies, forwarded_for):
    from django.test import RequestFactory
    from rest_framework.throttling import BaseThrottle

    from backend.throttling import client_address

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.200", **headers)

    assert client_address(request) == BaseThrottle().get_ident(request)
    assert AnonRateThrottle().get_ident(request) == BaseThrottle().get_ident(request)
