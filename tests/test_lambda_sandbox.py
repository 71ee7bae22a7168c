"""A Lambda sandbox is frozen between invocations: what that does to kept connections and repairs.

Connections opened in one invocation may be dead in the next: closed by the server, or
dropped by the network without a word. A cache invalidation lost during a Redis outage
has no worker exit to repair it. These tests run the handler against their own Redis
(tests/test_cache_outage.py's helpers) or the real PostgreSQL, and break things between
invocations as a pause would.
"""

import contextlib
import json
import socket
import threading
import time
from http import HTTPStatus

import psycopg2
import pytest
import redis
from django.db import connection

from backend.cache import cache_stats, redis_breaker
from items.cache import item_cache
from tests.factories import ItemFactory
from tests.lambda_events import API_DOMAIN, http_api_event, load_handler
from tests.test_cache_outage import use_redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def gateway_settings(settings):
    settings.ALLOWED_HOSTS = [API_DOMAIN]


@pytest.fixture
def lambda_module():
    return load_handler()


def read(lambda_module, item_id) -> tuple[int, str | None, int | None]:
    answer = lambda_module.handler(http_api_event("GET", f"/api/items/{item_id}/"), None)
    body = json.loads(answer["body"]) if answer["statusCode"] == HTTPStatus.OK else {}
    return answer["statusCode"], answer["headers"].get("x-cache"), body.get("quantity")


def pause(monkeypatch, lambda_module, seconds: float) -> None:
    """What the handler sees of a frozen sandbox: the wall clock moved on since its last answer."""
    monkeypatch.setattr(lambda_module, "_last_answered", time.time() - seconds)


class SilentProxy:
    """A TCP relay to Redis whose connections can be made to drop traffic without a word.

    What a NAT or a VPC's connection tracking does to a connection idle for too long,
    or a partition to every connection: no FIN, no RST, the peer just never answers.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.silent: set[int] = set()
        self.partitioned = False
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_open_connections(self) -> None:
        self.silent.update(range(1, self.accepted + 1))

    @contextlib.contextmanager
    def partition(self):
        """Every connection, open or opened meanwhile, goes silent; later ones get through."""
        self.partitioned = True
        self.drop_open_connections()
        try:
            yield
        finally:
            self.partitioned = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            number = self.accepted
            if self.partitioned:
                self.silent.add(number)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._relay, args=(number, source, sink), daemon=True
                ).start()

    def _relay(self, number: int, source, sink) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if number not in self.silent:
                sink.sendall(data)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def redis_behind_proxy(own_redis, settings):
    _, port = own_redis
    proxy = SilentProxy(port)
    use_redis(settings, proxy.port)
    yield proxy
    proxy.close()
    item_cache.reset()


def generation(port: int) -> bytes | None:
    keys = redis.Redis(port=port).keys("*items*generation*")
    return redis.Redis(port=port).get(keys[0]) if keys else None


def test_after_a_long_pause_a_silently_dropped_redis_connection_costs_no_hit(
    lambda_module, redis_behind_proxy, own_redis, monkeypatch
):
    """Read on the dead connection, a hit would wait for the timeout, bypass the cache and
    count as an outage, so the next read would move the whole cache's generation on."""
    item = ItemFactory(quantity=4)
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "MISS", 4)
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 4)
    errors_before, generation_before = cache_stats()["error"], generation(own_redis[1])

    redis_behind_proxy.drop_open_connections()
    pause(monkeypatch, lambda_module, 15 * 60)

    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 4)
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 4)
    assert cache_stats()["error"] == errors_before
    assert not redis_breaker().is_open
    assert generation(own_redis[1]) == generation_before


def test_after_a_short_pause_the_kept_redis_connection_is_used_again(
    lambda_module, redis_behind_proxy, monkeypatch
):
    item = ItemFactory()
    read(lambda_module, item.pk)
    read(lambda_module, item.pk)
    opened = redis_behind_proxy.accepted

    pause(monkeypatch, lambda_module, 5)

    assert read(lambda_module, item.pk)[1] == "HIT"
    assert redis_behind_proxy.accepted == opened


def test_a_redis_connection_the_server_closed_during_a_pause_is_replaced_without_a_failure(
    lambda_module, own_redis, settings, monkeypatch
):
    _, port = own_redis
    use_redis(settings, port)
    item = ItemFactory(quantity=2)
    read(lambda_module, item.pk)
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 2)
    errors_before = cache_stats()["error"]

    redis.Redis(port=port).client_kill_filter(_type="normal", skipme=True)
    pause(monkeypatch, lambda_module, 5)  # too short for the handler to reconnect itself

    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 2)
    assert cache_stats()["error"] == errors_before
    item_cache.reset()


def test_an_invalidation_lost_in_an_outage_is_repaired_by_the_next_invocation(
    lambda_module, redis_behind_proxy, monkeypatch
):
    """No worker exit runs `settle_caches` in a sandbox: the next read or write repairs."""
    token = _token()
    item = ItemFactory(quantity=1)
    read(lambda_module, item.pk)
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 1)

    with redis_behind_proxy.partition():  # the invalidation goes nowhere, for good
        patched = lambda_module.handler(
            http_api_event(
                "PATCH",
                f"/api/items/{item.pk}/",
                headers={"authorization": f"Token {token}", "content-type": "application/json"},
                body=b'{"quantity": 7}',
            ),
            None,
        )
    pause(monkeypatch, lambda_module, 15 * 60)

    assert patched["statusCode"] == HTTPStatus.OK
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "MISS", 7)
    assert read(lambda_module, item.pk) == (HTTPStatus.OK, "HIT", 7)


def _token() -> str:
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    return Token.objects.create(user=UserFactory()).key


def test_a_database_connection_closed_during_a_pause_is_replaced(lambda_module, monkeypatch):
    item = ItemFactory()
    lambda_module.handler(http_api_event("GET", "/api/items/"), None)
    backend_pid = connection.connection.info.backend_pid
    with psycopg2.connect(**_admin_dsn()) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    pause(monkeypatch, lambda_module, 5)

    answer = lambda_module.handler(http_api_event("GET", "/api/items/"), None)

    assert answer["statusCode"] == HTTPStatus.OK
    assert json.loads(answer["body"])["results"][0]["id"] == item.pk


def test_after_a_long_pause_the_database_connection_is_opened_anew(lambda_module, monkeypatch):
    lambda_module.handler(http_api_event("GET", "/api/items/"), None)
    kept = connection.connection
    assert kept is not None

    pause(monkeypatch, lambda_module, 15 * 60)
    lambda_module.handler(http_api_event("GET", "/api/items/"), None)

    assert connection.connection is not kept


def _admin_dsn() -> dict:
    settings_dict = connection.settings_dict
    return {
        "dbname": settings_dict["NAME"],
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"],
        "host": settings_dict["HOST"] or "127.0.0.1",
        "port": settings_dict["PORT"] or 5432,
    }
