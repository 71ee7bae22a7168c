"""A Redis outage: no 5xx, no lost write, no timeout paid per request, no stale value after.

The test runs its own Redis on a free port and freezes it with SIGSTOP, which is
what a network partition or a hung node looks like to a client: connections
accept, commands time out. The data survives, so entries written before the
outage are still there when it ends, the hard case for lost invalidations.
"""

import os
import signal
import subprocess
import time
from http import HTTPStatus

import pytest
import redis

from backend.cache import redis_breaker
from items.cache import item_cache
from items.models import Item
from tests.factories import ItemFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def start_redis(port: int, *options: str, client: redis.Redis | None = None) -> subprocess.Popen:
    """redis-server on `port`, with `options` after the defaults, once it answers
    `client` (a plain one on `port` unless given)."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *options,
        ],
        stdout=subprocess.DEVNULL,
    )
    client = client or redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return process


def stop_redis(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(10)


def use_redis(settings, port: int) -> None:
    settings.CACHES = {
        alias: {**config, "LOCATION": f"redis://127.0.0.1:{port}/0"}
        for alias, config in settings.CACHES.items()
    }
    settings.CACHE_BREAKER_THRESHOLD = 3
    settings.CACHE_BREAKER_COOLDOWN = 2
    item_cache.reset()


@pytest.fixture
def cache_on_own_redis(own_redis, settings):
    process, port = own_redis
    use_redis(settings, port)
    return process


def get(client, item_id):
    response = client.get(f"/api/items/{item_id}/")
    return response.status_code, response["X-Cache"], response.json()["quantity"]


def test_reads_and_writes_survive_an_outage_and_nothing_stale_returns(
    cache_on_own_redis, api_client, auth_client, monkeypatch
):
    changed, untouched = ItemFactory(quantity=1), ItemFactory(quantity=1)
    for item in (changed, untouched):
        get(api_client, item.pk)
        assert get(api_client, item.pk) == (HTTPStatus.OK, "HIT", 1)

    breaker = redis_breaker()
    failures = []
    record_failure = breaker.record_failure
    monkeypatch.setattr(breaker, "record_failure", lambda: [failures.append(1), record_failure()])
    os.kill(cache_on_own_redis.pid, signal.SIGSTOP)
    responses = []
    for quantity in range(2, 12):
        responses.append(
            auth_client.patch(f"/api/items/{changed.pk}/", {"quantity": quantity}, format="json")
        )
        responses.append(api_client.get(f"/api/items/{changed.pk}/"))

    assert [r.status_code for r in responses] == [HTTPStatus.OK] * 20
    assert responses[-1].json()["quantity"] == 11
    assert responses[-1]["X-Cache"] == "BYPASS"
    assert Item.objects.get(pk=changed.pk).quantity == 11
    # Once open, the breaker stops reads and throttles paying the socket timeout: the
    # first three calls opened it (the first write's throttle and invalidation, the first
    # read). Each later write still tries its invalidation once (a failover's new server
    # may already answer): 9 more.
    assert breaker.is_open
    assert len(failures) == 3 + 9

    os.kill(cache_on_own_redis.pid, signal.SIGCONT)
    time.sleep(2.1)  # the breaker's cool-down, so the next read probes Redis

    assert get(api_client, changed.pk) == (HTTPStatus.OK, "MISS", 11)
    assert get(api_client, changed.pk) == (HTTPStatus.OK, "HIT", 11)
    assert get(api_client, untouched.pk)[:2] == (HTTPStatus.OK, "MISS")
    assert not item_cache.breaker.is_open


def test_with_redis_gone_the_api_still_answers(cache_on_own_redis, api_client, auth_client):
    item = ItemFactory()
    cache_on_own_redis.terminate()
    cache_on_own_redis.wait(10)

    created = auth_client.post("/api/items/", {"name": "n", "price": "1.00"}, format="json")
    read = api_client.get(f"/api/items/{item.pk}/")
    deleted = auth_client.delete(f"/api/items/{item.pk}/")

    assert (created.status_code, read.status_code, deleted.status_code) == (201, 200, 204)
    assert read["X-Cache"] == "BYPASS"
    assert not Item.objects.filter(pk=item.pk).exists()


def test_a_server_back_with_older_data_serves_nothing_it_lost(
    tmp_path, settings, api_client, auth_client
):
    """A failover to a replica that missed the last writes, or a restart from an older
    snapshot: the last tombstones are gone, and no command failed to say so."""
    port, data = free_port(), ("--dir", str(tmp_path))
    server = start_redis(port, *data)
    try:
        use_redis(settings, port)
        item = ItemFactory(quantity=1)
        get(api_client, item.pk)
        assert get(api_client, item.pk) == (HTTPStatus.OK, "HIT", 1)
        redis.Redis(port=port).save()  # what the replica holds: quantity 1, cached
        auth_client.patch(f"/api/items/{item.pk}/", {"quantity": 2}, format="json")
        assert get(api_client, item.pk) == (HTTPStatus.OK, "MISS", 2)

        redis.Redis(port=port).shutdown(nosave=True)
        server.wait(10)
        server = start_redis(port, *data)  # the replica takes over

        assert [get(api_client, item.pk)[2] for _ in range(3)] == [2, 2, 2]
        assert get(api_client, item.pk)[:2] == (HTTPStatus.OK, "HIT")
    finally:
        stop_redis(server)
