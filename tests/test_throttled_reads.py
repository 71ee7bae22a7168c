"""The anonymous throttle on item reads: its counter travels in the cache read's round trip.

Against the real Redis: one round trip per cached read with the throttle on, the rate
held at exactly its limit whichever path (the shortcut or DRF's) counts a request, the
same counter and window as `backend.throttling._FixedWindow`, failing open without
Redis, and the throttles' own round trip wherever the read cannot carry the counter.
"""

import logging
from http import HTTPStatus

import pytest
import redis
from django.core.cache import caches

from backend.throttling import AnonRateThrottle, _FixedWindow
from bench.request_counts import counting
from items.cache import item_cache
from tests.test_cache_outage import use_redis

pytestmark = pytest.mark.django_db


def detail(item_id) -> str:
    return f"/api/items/{item_id}/"


@pytest.fixture
def anon_rate(settings):
    """Set the anonymous rate (the user rate off); returns the setter."""

    def set_rate(rate: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"anon": rate, "user": None},
        }

    return set_rate


@pytest.fixture
def round_trips():
    """Counts the Redis round trips made (`counting`'s `redis`), a pipeline being one."""
    with counting() as counter:
        yield counter


@pytest.fixture
def throttles_healthy(monkeypatch):
    monkeypatch.setattr(_FixedWindow, "failing_open", False)


def statuses(client, path: str, count: int, **extra) -> list[int]:
    return [client.get(path, **extra).status_code for _ in range(count)]


def test_a_cached_read_with_the_throttle_on_is_one_redis_round_trip(
    api_client, item, anon_rate, round_trips, drf_cycles
):
    anon_rate("1000/min")
    api_client.get(detail(item.pk))  # fill the cache, open the connections
    round_trips.redis = 0

    responses = [api_client.get(detail(item.pk)) for _ in range(5)]

    assert [r["X-Cache"] for r in responses] == ["HIT"] * 5
    assert round_trips.redis == 5
    assert not drf_cycles


def test_the_rate_holds_at_exactly_its_limit_across_the_shortcut_and_drfs_path(
    api_client, item, anon_rate, drf_cycles
):
    anon_rate("6/min")
    paths = [detail(item.pk), f"{detail(item.pk)}?format=json"] * 3

    allowed = [api_client.get(path).status_code for path in paths]
    denied = [api_client.get(detail(item.pk)), api_client.get(f"{detail(item.pk)}?format=json")]

    assert allowed == [HTTPStatus.OK] * 6
    assert [r.status_code for r in denied] == [HTTPStatus.TOO_MANY_REQUESTS] * 2
    # DRF answered the reads with ?format=json, and the one the shortcut refused.
    assert len(drf_cycles) == 3 + 1 + 1
    problem = denied[0]
    assert problem["Content-Type"] == "application/problem+json"
    assert 1 <= int(problem["Retry-After"]) <= 60
    assert problem.json()["code"] == "throttled"


def test_the_shortcut_counts_in_the_throttles_own_counter_and_window(
    api_client, item, anon_rate, monkeypatch
):
    anon_rate("100/min")
    now = 6_000_030.0
    monkeypatch.setattr(AnonRateThrottle, "timer", staticmethod(lambda: now))

    api_client.get(detail(item.pk))  # a miss: three round trips, one count
    api_client.get(detail(item.pk))  # a hit

    key = caches["throttle"].make_key(f"throttle_anon_127.0.0.1:{int(now // 60)}")
    client = redis.Redis.from_url(caches["throttle"]._server)
    assert client.get(key) == b"2"
    assert caches["throttle"].get(f"throttle_anon_127.0.0.1:{int(now // 60)}") == 2
    assert 0 < client.pttl(key) <= 61_000


def test_a_counter_keeps_its_expiry_and_one_without_an_expiry_gets_it(
    api_client, item, anon_rate, monkeypatch
):
    anon_rate("100/min")
    now = 6_000_030.0
    monkeypatch.setattr(AnonRateThrottle, "timer", staticmethod(lambda: now))
    key = caches["throttle"].make_key(f"throttle_anon_127.0.0.1:{int(now // 60)}")
    client = redis.Redis.from_url(caches["throttle"]._server)
    api_client.get(detail(item.pk))  # fill the cache

    client.set(key, 5, px=30_000)  # a counter with its expiry
    api_client.get(detail(item.pk))
    kept = client.pttl(key)
    client.set(key, 7)  # a counter without one, as a write cut short could leave it
    api_client.get(detail(item.pk))

    assert 0 < kept <= 30_000
    assert client.get(key) == b"8"
    assert 30_000 < client.pttl(key) <= 61_000


def test_a_new_window_brings_a_fresh_budget(api_client, item, anon_rate, monkeypatch):
    anon_rate("2/min")
    now = [6_000_000.0]
    monkeypatch.setattr(AnonRateThrottle, "timer", staticmethod(lambda: now[0]))

    first = statuses(api_client, detail(item.pk), 3)
    now[0] += 45.5
    denied = api_client.get(detail(item.pk))
    now[0] += 14.5
    next_window = statuses(api_client, detail(item.pk), 2)

    assert first == [HTTPStatus.OK] * 2 + [HTTPStatus.TOO_MANY_REQUESTS]
    assert (denied.status_code, denied["Retry-After"]) == (HTTPStatus.TOO_MANY_REQUESTS, "15")
    assert next_window == [HTTPStatus.OK] * 2


def test_a_refused_read_of_an_uncached_item_loads_nothing(
    api_client, item, anon_rate, django_assert_num_queries
):
    anon_rate("1/min")
    api_client.get(detail(item.pk))

    with django_assert_num_queries(0):
        refused = api_client.get(detail(item.pk + 1000))

    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS


@pytest.mark.django_db(transaction=True)
def test_with_redis_gone_reads_pass_and_the_log_says_so_once(
    own_redis, settings, api_client, item, anon_rate, throttles_healthy, caplog
):
    process, port = own_redis
    use_redis(settings, port)
    anon_rate("1/min")
    api_client.get(detail(item.pk))
    process.terminate()
    process.wait(10)

    with caplog.at_level(logging.WARNING, logger="backend.throttling"):
        responses = [api_client.get(detail(item.pk)) for _ in range(4)]

    assert [(r.status_code, r["X-Cache"]) for r in responses] == [(200, "BYPASS")] * 4
    messages = [r.getMessage() for r in caplog.records if r.name == "backend.throttling"]
    assert messages == ["Throttling is off: the cache is unavailable"]


@pytest.mark.django_db(transaction=True)
def test_throttling_says_it_is_back_on_when_a_read_counts_again(
    own_redis, settings, api_client, item, anon_rate, throttles_healthy, caplog
):
    _, port = own_redis
    use_redis(settings, port)
    anon_rate("100/min")
    _FixedWindow.failing_open = True  # as after an outage

    with caplog.at_level(logging.WARNING, logger="backend.throttling"):
        api_client.get(detail(item.pk))

    assert not _FixedWindow.failing_open
    messages = [r.getMessage() for r in caplog.records if r.name == "backend.throttling"]
    assert messages == ["Throttling is back on: the cache answers again"]


class TestWhereTheReadCannotCarryTheCounter:
    """The throttles count with their own round trip, before the read, and still hold."""

    def test_with_the_cache_disabled(self, api_client, item, anon_rate, settings, round_trips):
        anon_rate("2/min")
        settings.CACHE_ENABLED = False

        assert statuses(api_client, detail(item.pk), 3) == [200, 200, 429]
        assert round_trips.redis  # the throttle's increments

    def test_with_the_in_process_store(self, api_client, item, anon_rate, settings, round_trips):
        anon_rate("2/min")
        settings.CACHES = {
            alias: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": alias}
            for alias in settings.CACHES
        }
        item_cache.reset()

        read = api_client.get(detail(item.pk))
        rest = statuses(api_client, detail(item.pk), 2)

        assert (read.status_code, read["X-Cache"], rest) == (200, "MISS", [200, 429])
        assert not round_trips.redis

    def test_with_a_throttle_that_counts_its_own_way(
        self, api_client, item, anon_rate, monkeypatch, round_trips
    ):
        from items.views import ItemViewSet

        class ClosedForMaintenance(AnonRateThrottle):
            def allow_request(self, request, view) -> bool:
                return False

            def wait(self) -> int:
                return 7

        anon_rate("1000/min")
        monkeypatch.setattr(ItemViewSet, "throttle_classes", [ClosedForMaintenance])

        response = api_client.get(detail(item.pk))

        assert (response.status_code, response["Retry-After"]) == (429, "7")
        assert not round_trips.redis  # no read: the throttle said no first
