"""The read-through protocol of backend/cache/, on Redis and on the in-process store."""

import threading
import time

import pytest
from django.core.cache import caches
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.cache import (
    BYPASS,
    DELETED,
    HIT,
    MISS,
    CacheUnavailable,
    CircuitBreaker,
    Counter,
    Entry,
    LimitExceeded,
    LocalStore,
    ReadThroughCache,
    RedisStore,
    ServerChanged,
    cache_stats,
    redis_breaker,
    settle_caches,
)
from backend.cache.kept_connection import KeptConnection


@pytest.fixture(params=["redis", "local"])
def engine(request) -> ReadThroughCache:
    store = RedisStore if request.param == "redis" else LocalStore
    return ReadThroughCache(namespace="protocol", store_factory=store)


def loader(version: int, payload: bytes = b"{}"):
    calls = []

    def load() -> Entry:
        calls.append(version)
        return Entry(version, payload)

    load.calls = calls
    return load


class RecordingStore:
    """A store in front of another, recording the name of each operation it is asked for."""

    def __init__(self, store):
        self.store = store
        self.calls = []

    def __getattr__(self, name):
        operation = getattr(self.store, name)

        def recorded(*args):
            self.calls.append(name)
            return operation(*args)

        return recorded


def beside(engine: ReadThroughCache, store) -> ReadThroughCache:
    """Another engine of the same namespace, using `store`."""
    return ReadThroughCache(namespace=engine.namespace, store_factory=lambda: store)


def take_lease(engine: ReadThroughCache, ttl_ms: int, key_id: int = 1) -> str | None:
    """Take the lease on `key_id` as a reader would; its token, or None when it is held."""
    token, _, _ = engine.store.take_lease_and_read(
        engine._lease_key(key_id), ttl_ms, engine._key("entry", key_id), engine._generation_key
    )
    return token


def test_a_miss_loads_and_fills_and_the_next_read_hits(engine):
    load = loader(3, b'{"v": 3}')

    first = engine.get_or_fill(1, load)
    second = engine.get_or_fill(1, load)

    assert (first.status, first.entry) == (MISS, Entry(3, b'{"v": 3}'))
    assert (second.status, second.entry) == (HIT, Entry(3, b'{"v": 3}'))
    assert load.calls == [3]


def test_invalidation_makes_the_next_read_load_again(engine):
    engine.get_or_fill(1, loader(1))

    engine.invalidate(1, 2)
    read = engine.get_or_fill(1, loader(2))

    assert (read.status, read.entry.version) == (MISS, 2)
    assert engine.get_or_fill(1, loader(2)).status == HIT


def test_a_bulk_invalidation_reaches_every_key_across_batches(engine, monkeypatch):
    monkeypatch.setattr("backend.cache.engine.INVALIDATION_BATCH", 2)
    for key_id in range(1, 6):
        engine.get_or_fill(key_id, loader(1))

    engine.invalidate_many([(key_id, 2) for key_id in range(1, 6)])

    reads = [engine.get_or_fill(key_id, loader(2)) for key_id in range(1, 6)]
    assert {(read.status, read.entry.version) for read in reads} == {(MISS, 2)}


def test_a_fill_older_than_the_tombstone_is_rejected(engine):
    engine.invalidate(1, 5)

    stale = engine.get_or_fill(1, loader(4))
    fresh = engine.get_or_fill(1, loader(5))

    assert (stale.status, fresh.status) == (MISS, MISS)
    assert engine.get_or_fill(1, loader(5)).entry.version == 5


def test_an_invalidation_never_lowers_a_recorded_version(engine):
    engine.invalidate(1, 7)
    engine.invalidate(1, 6)  # a late, older invalidation

    engine.get_or_fill(1, loader(6))

    assert engine.get_or_fill(1, loader(7)).status == MISS


def test_a_deleted_row_excludes_every_fill_until_its_tombstone_expires(engine, settings):
    engine.get_or_fill(1, loader(3))
    engine.invalidate(1, DELETED)

    engine.get_or_fill(1, loader(3))  # a reader that loaded before the delete
    engine.get_or_fill(1, loader(0, b""))  # and one that saw no row

    assert engine.get_or_fill(1, loader(0, b"")).status == MISS


def test_a_negative_entry_is_replaced_when_the_row_is_created(engine):
    assert engine.get_or_fill(1, loader(0, b"")).status == MISS
    assert engine.get_or_fill(1, loader(0, b"")).status == HIT

    engine.invalidate(1, 1)

    read = engine.get_or_fill(1, loader(1, b'{"id": 1}'))
    assert (read.status, read.entry.version) == (MISS, 1)


def test_a_load_slower_than_half_the_tombstone_lifetime_is_not_filled(engine, settings):
    settings.CACHE_TOMBSTONE_TTL = 0.02

    def slow_load() -> Entry:
        threading.Event().wait(0.05)
        return Entry(1, b"{}")

    before = cache_stats()["stale_fill_rejected"]
    engine.get_or_fill(1, slow_load)

    assert cache_stats()["stale_fill_rejected"] == before + 1
    assert engine.get_or_fill(1, loader(1)).status == MISS
    assert take_lease(engine, 1000)  # each released its lease, the first without a fill


def test_a_load_that_fails_releases_its_lease(engine):
    def database_away() -> Entry:
        raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        engine.get_or_fill(1, database_away)

    # Free at once, not after its lifetime: the next reader leads without waiting.
    assert take_lease(engine, 1000)


def test_a_miss_makes_three_store_calls_and_leaves_no_lease_behind(engine):
    """A lookup, the lease with a second look, and the fill that releases the lease."""
    store = RecordingStore(engine.store)

    assert beside(engine, store).get_or_fill(1, loader(1)).status == MISS

    assert store.calls == ["read", "take_lease_and_read", "fill"]
    assert take_lease(engine, 1000)  # free for the next reader, not after its lifetime


def test_a_fill_that_loses_to_a_newer_write_still_releases_its_lease(engine):
    engine.invalidate(1, 5)

    assert engine.get_or_fill(1, loader(4)).status == MISS  # loaded before version 5

    assert take_lease(engine, 1000)


def test_a_leader_that_finds_the_entry_filled_since_its_lookup_releases_its_lease(engine):
    class FirstLookupMisses(RecordingStore):
        def read(self, key, generation_key):  # as if the fill came right after it
            return self.store.read(key, generation_key)[0], None

    engine.get_or_fill(1, loader(1))

    assert beside(engine, FirstLookupMisses(engine.store)).get_or_fill(1, loader(1)).status == HIT
    assert take_lease(engine, 1000)


def test_a_fill_the_store_fails_releases_its_lease_when_the_store_answers(engine):
    class FillFails(RecordingStore):
        def fill(self, *args):
            raise ConnectionError("the fill was lost")

    assert beside(engine, FillFails(engine.store)).get_or_fill(1, loader(1)).status == MISS

    assert take_lease(engine, 1000)


def test_a_lease_taken_before_the_generation_check_fails_is_released(engine):
    """The lease read finds the counter lost (below this process's floor) and cannot raise it."""

    class CounterLostAfterTheLookup(RecordingStore):
        def take_lease_and_read(self, *args):
            token, _, stored = self.store.take_lease_and_read(*args)
            return token, 0, stored

        def raise_generation(self, *args):
            raise ConnectionError("the store went away")

    store = CounterLostAfterTheLookup(engine.store)
    reader = beside(engine, store)
    # As after this process moved the generation past an outage it saw.
    reader._floor_generation = engine.store.advance_generation(engine._generation_key)

    assert reader.get_or_fill(1, loader(1)).status == BYPASS
    assert "release_lease" in store.calls
    assert take_lease(engine, 1000)


def test_a_lease_whose_reply_a_reset_connection_lost_is_still_its_takers(monkeypatch):
    """The commands ran, the connection dropped before their replies, and were sent again."""
    engine = ReadThroughCache(namespace="protocol", store_factory=RedisStore)
    engine.get_or_fill(2, loader(1))  # this thread's connection is now a kept one
    exchange = KeptConnection.exchange
    dropped = []

    def drop_the_first_lease_reply(kept, request, replies):
        result = exchange(kept, request, replies)
        if b"SET" in request and not dropped:
            dropped.append(request)
            kept.disconnect()
            raise RedisConnectionError("Connection closed by server.")
        return result

    monkeypatch.setattr(KeptConnection, "exchange", drop_the_first_lease_reply)
    store = RecordingStore(engine.store)

    assert beside(engine, store).get_or_fill(1, loader(1)).status == MISS

    assert dropped
    assert "lease_held" not in store.calls  # it led: no waiting for a fill from itself
    assert take_lease(engine, 1000)  # and its fill released the lease


def test_a_late_leaders_fill_leaves_its_successors_lease_alone(engine):
    lease = engine._lease_key(1)
    late_leader = take_lease(engine, 20)
    time.sleep(0.03)  # its lease expires while it is still loading
    successor = take_lease(engine, 1000)

    key = engine._key("entry", 1)
    engine.store.fill(key, Entry(1, b"{}"), 0, engine.schema, 1000, (lease, late_leader))

    assert successor is not None
    assert take_lease(engine, 1000) is None  # still the successor's


def test_a_leader_slower_than_its_lease_leaves_its_successors_lease_alone(engine):
    lease = engine._lease_key(1)
    late_leader = take_lease(engine, 20)
    time.sleep(0.03)  # its lease expires while it is still loading
    successor = take_lease(engine, 1000)

    engine.store.release_lease(lease, late_leader)

    assert successor is not None
    assert take_lease(engine, 1000) is None  # still the successor's


def test_a_reader_waiting_for_a_leader_that_filled_nothing_stops_when_it_is_done(engine, settings):
    """After a delete, the tombstone refuses the leader's fill of "no such item"."""
    settings.CACHE_LOCK_WAIT = 5
    engine.invalidate(1, DELETED)
    leader = take_lease(engine, 5000)
    read_calls = []
    read = engine.store.read

    def read_then_leader_done(*args):
        read_calls.append(args)
        if len(read_calls) == 2:  # the waiter's first poll: the leader's fill was refused
            engine.store.release_lease(engine._lease_key(1), leader)
        return read(*args)

    engine.store.read = read_then_leader_done

    assert engine.get_or_fill(1, loader(0)).status == MISS
    assert len(read_calls) <= 3  # not a poll every 5 ms for CACHE_LOCK_WAIT


class LosesInvalidations(RecordingStore):
    """A store shared by two processes, whose invalidations fail for one of them."""

    failing = False

    def invalidate(self, *args) -> None:
        self.calls.append("invalidate")
        if self.failing:
            raise ConnectionError("the store went away")
        self.store.invalidate(*args)


@pytest.fixture(params=["redis", "local"])
def two_processes(request) -> tuple[ReadThroughCache, ReadThroughCache, LosesInvalidations]:
    """Two engines on one store, the first of which can lose its invalidations."""
    shared = RedisStore() if request.param == "redis" else LocalStore()
    flaky = LosesInvalidations(shared)
    writer = ReadThroughCache(namespace="lost", store_factory=lambda: flaky)
    reader = ReadThroughCache(namespace="lost", store_factory=lambda: shared)
    return writer, reader, flaky


@pytest.mark.parametrize("after_recovery", ["next_write", "settle_before_exit"])
def test_a_process_that_lost_an_invalidation_repairs_it_without_reading(
    two_processes, after_recovery
):
    writer, reader, store = two_processes
    reader.get_or_fill(1, loader(1))
    store.failing = True
    writer.invalidate(1, 2)  # version 2 committed; its invalidation is lost
    store.failing = False

    if after_recovery == "next_write":
        writer.invalidate(9, 5)
    else:
        settle_caches()

    read = reader.get_or_fill(1, loader(2))
    assert (read.status, read.entry.version) == (MISS, 2)


def test_an_invalidation_lost_while_the_generation_advances_is_repaired_too(two_processes):
    writer, reader, store = two_processes
    store.failing = True
    writer.invalidate(1, 2)  # lost: the writer's next write advances the generation
    store.failing = False
    advance = store.store.advance_generation

    def advance_while_another_is_lost(generation_key: str) -> int:
        advanced = advance(generation_key)
        reader.get_or_fill(1, loader(2))  # fills version 2 under the new generation
        store.failing = True
        writer.invalidate(1, 3)  # version 3 committed, and this invalidation is lost too
        store.failing = False
        return advanced

    store.advance_generation = advance_while_another_is_lost
    writer.invalidate(9, 1)  # the repair of the first loss
    del store.advance_generation
    settle_caches()

    read = reader.get_or_fill(1, loader(3))
    assert (read.status, read.entry.version) == (MISS, 3)


def test_a_process_exiting_with_its_breaker_open_still_repairs(
    two_processes, settings, monkeypatch
):
    writer, reader, store = two_processes
    reader.get_or_fill(1, loader(1))
    store.failing = True
    monkeypatch.setattr(store, "advance_generation", store.invalidate)  # all of it away
    for _ in range(settings.CACHE_BREAKER_THRESHOLD):
        writer.invalidate(1, 2)  # lost, the repair fails, and the breaker opens
    store.failing = False
    monkeypatch.undo()
    assert writer.breaker.is_open

    settle_caches()  # the worker exits within the cool-down, Redis back
    redis_breaker.cache_clear()  # the reader is another process, with a breaker of its own

    read = reader.get_or_fill(1, loader(2))
    assert (read.status, read.entry.version) == (MISS, 2)


def test_once_repaired_a_write_costs_one_store_call_again(two_processes):
    writer, _, store = two_processes
    store.failing = True
    writer.invalidate(1, 2)
    store.failing = False
    writer.invalidate(2, 2)  # the repair: it advances the generation
    store.calls.clear()

    writer.invalidate(3, 2)
    writer.settle()

    assert store.calls == ["invalidate"]


def test_after_the_store_loses_its_generation_processes_agree_on_one_again(two_processes):
    writer, reader, store = two_processes
    store.failing = True
    writer.invalidate(1, 1)  # lost: the writer will advance the generation
    store.failing = False
    writer.invalidate(2, 1)  # ... which it does here: generation 1
    lose_generation(store.store, writer._generation_key)

    reader.get_or_fill(3, loader(1))  # the reader sees generation 0 and fills
    writer.get_or_fill(3, loader(1))  # the writer knows better: a miss, and it refills

    assert [reader.get_or_fill(3, loader(1)).status for _ in range(2)] == [HIT, HIT]
    assert writer.get_or_fill(3, loader(1)).status == HIT


def lose_generation(store, generation_key: str) -> None:
    """What a Redis restart without persistence does to the generation counter."""
    if isinstance(store, RedisStore):
        store._client.delete(generation_key)
    else:
        store._data.pop(generation_key)


def test_disabling_the_cache_bypasses_it(engine, settings):
    settings.CACHE_ENABLED = False
    load = loader(1)

    assert engine.get_or_fill(1, load).status == BYPASS
    assert engine.get_or_fill(1, load).status == BYPASS
    assert load.calls == [1, 1]


def counter(engine: ReadThroughCache, name: str = "quota", ttl_ms: int = 60_000, limit: int = 10):
    return Counter(caches["default"].make_key(f"{engine.namespace}:{name}"), ttl_ms, limit)


def test_a_reads_counters_are_counted_in_its_first_round_trip_only(engine):
    store = RecordingStore(engine.store)
    reader, counters = beside(engine, store), (counter(engine, "a"), counter(engine, "b"))

    miss = reader.get_or_fill(1, loader(1), counters)
    hit = reader.get_or_fill(1, loader(1), counters[:1])

    assert (miss.status, miss.counts, hit.status, hit.counts) == (MISS, (1, 1), HIT, (2,))
    assert store.calls == ["read_and_count", "take_lease_and_read", "fill", "read_and_count"]
    assert reader.get_or_fill(1, loader(1)).counts is None


def test_a_count_past_its_limit_refuses_the_read_before_any_load(engine):
    quota, load = counter(engine, limit=2), loader(1)
    assert [engine.get_or_fill(1, load, (quota,)).counts for _ in range(2)] == [(1,), (2,)]

    with pytest.raises(LimitExceeded) as refused:
        engine.get_or_fill(2, load, (quota,))  # a miss: it would load

    assert refused.value.counts == (3,)
    assert load.calls == [1]  # the first read's miss only


def test_a_counter_lives_from_its_first_count_and_keeps_that_expiry(engine):
    quota = counter(engine, ttl_ms=1000)
    engine.get_or_fill(1, loader(1), (quota,))
    time.sleep(0.5)
    assert engine.get_or_fill(1, loader(1), (quota,)).counts == (2,)  # not a new lifetime

    time.sleep(0.6)

    assert engine.get_or_fill(1, loader(1), (quota,)).counts == (1,)


def test_redis_counters_are_the_django_caches_integers(settings):
    engine = ReadThroughCache(namespace="counted", store_factory=RedisStore)
    cache, quota = caches["default"], counter(engine)
    assert engine.counts_in("default")

    engine.get_or_fill(1, loader(1), (quota,))
    cache.incr("counted:quota")  # the key `counter` made, through django-redis

    assert cache.get("counted:quota") == 2
    assert engine.get_or_fill(1, loader(1), (quota,)).counts == (3,)
    assert 0 < engine.store._client.pttl(quota.key) <= 60_000


def test_counters_ride_on_reads_only_where_the_django_cache_keeps_its_keys(settings):
    redis_engine = ReadThroughCache(namespace="counted", store_factory=RedisStore)
    local_engine = ReadThroughCache(namespace="counted", store_factory=LocalStore)
    assert redis_engine.counts_in("throttle")
    assert not local_engine.counts_in("throttle")

    settings.CACHE_ENABLED = False
    assert not redis_engine.counts_in("throttle")

    settings.CACHE_ENABLED = True
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {**settings.CACHES["throttle"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    assert not redis_engine.counts_in("throttle")
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {**settings.CACHES["throttle"], "BACKEND": "a.Cache"},
    }
    assert not redis_engine.counts_in("throttle")
    assert not redis_engine.counts_in("absent")


def test_a_read_that_cannot_reach_the_store_counts_nothing_and_bypasses(engine, settings):
    settings.CACHE_BREAKER_THRESHOLD = 1
    engine.reset()

    class Unreachable(RecordingStore):
        def read_and_count(self, *args):
            raise RedisConnectionError("gone")

    read = beside(engine, Unreachable(engine.store)).get_or_fill(1, loader(1), (counter(engine),))

    assert (read.status, read.counts) == (BYPASS, None)


def test_a_redis_counter_that_cannot_be_counted_fails_the_read_as_an_outage(settings):
    engine = ReadThroughCache(namespace="counted", store_factory=RedisStore)
    quota = counter(engine)
    engine.store._client.hset(quota.key, "not", "a number")
    try:
        read = engine.get_or_fill(1, loader(1), (quota,))
    finally:
        engine.store._client.delete(quota.key)

    assert (read.status, read.counts) == (BYPASS, None)


def test_redis_entries_carry_the_prefix_schema_and_a_finite_ttl(settings):
    from django_redis import get_redis_connection

    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "KEY_PREFIX": "items-api-fork"},
    }
    engine = ReadThroughCache(namespace="item", schema=7, store_factory=RedisStore)
    engine.get_or_fill(424242, loader(2, b'{"id": 424242}'))
    key = caches["default"].make_key("item:entry:424242")
    redis = get_redis_connection()
    try:
        assert key.startswith("items-api-fork:")
        assert redis.hget(key, "p") == b'{"id": 424242}'  # JSON bytes, never a pickle
        assert redis.hget(key, "s") == b"7"
        assert 0 < redis.pttl(key) <= settings.CACHE_TTL * 1000
    finally:
        redis.delete(key)


@pytest.fixture(params=["redis", "local"])
def two_releases(request) -> tuple[ReadThroughCache, ReadThroughCache]:
    """The engines of two releases side by side, whose stored formats differ."""
    shared = RedisStore() if request.param == "redis" else LocalStore()
    old, new = (
        ReadThroughCache(namespace="rolling", schema=schema, store_factory=lambda: shared)
        for schema in (1, 2)
    )
    return old, new


def test_a_release_never_reads_an_entry_of_another_schema(two_releases):
    old, new = two_releases
    old.get_or_fill(1, loader(1, b"old format"))

    read = new.get_or_fill(1, loader(1, b"new format"))

    assert (read.status, read.entry.payload) == (MISS, b"new format")
    assert new.get_or_fill(1, loader(1, b"new format")).status == HIT


@pytest.mark.parametrize("writer_is_old", [True, False], ids=["old writes", "new writes"])
def test_either_release_invalidates_what_the_other_cached(two_releases, writer_is_old):
    old, new = two_releases
    writer, reader = (old, new) if writer_is_old else (new, old)
    reader.get_or_fill(1, loader(1))

    writer.invalidate(1, 2)
    stale = reader.get_or_fill(1, loader(1))  # a reader that loaded before the commit
    fresh = reader.get_or_fill(1, loader(2))

    assert (stale.status, fresh.status, fresh.entry.version) == (MISS, MISS, 2)
    assert reader.get_or_fill(1, loader(2)).status == HIT


def connections_accepted() -> int:
    """How many connections Redis has accepted since it started (never goes down)."""
    from django_redis import get_redis_connection

    return get_redis_connection().info("stats")["total_connections_received"]


def test_hit_reads_keep_one_redis_connection_per_thread():
    engine = ReadThroughCache(namespace="kept", store_factory=RedisStore)
    engine.get_or_fill(1, loader(1))
    before = connections_accepted()

    def read_many():
        for _ in range(50):
            assert engine.get_or_fill(1, loader(1)).status == HIT

    read_many()
    threads = [threading.Thread(target=read_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert connections_accepted() - before <= 3  # one per new thread, none per read


def test_a_kept_connection_the_server_closed_is_replaced_without_a_miss():
    from django_redis import get_redis_connection

    engine = ReadThroughCache(namespace="kept", store_factory=RedisStore)
    engine.get_or_fill(1, loader(1))
    errors = cache_stats()["error"]
    # What Redis's idle `timeout` or a failover does to this process's connections.
    get_redis_connection().client_kill_filter(_type="normal", skipme=True)

    read = engine.get_or_fill(1, loader(1))

    assert read.status == HIT
    assert cache_stats()["error"] == errors
    assert not engine.breaker.is_open


def test_a_forked_process_reads_over_its_own_connection():
    import os

    engine = ReadThroughCache(namespace="kept", store_factory=RedisStore)
    for item in range(1, 21):
        engine.get_or_fill(item, loader(item, b"%d" % item))

    def read_all() -> bool:
        return all(
            engine.get_or_fill(item, loader(0)).entry == Entry(item, b"%d" % item)
            for _ in range(20)
            for item in range(1, 21)
        )

    child = os.fork()
    if child == 0:  # both sharing the parent's socket would mix up their replies
        os._exit(0 if read_all() else 1)
    parent_ok = read_all()
    _, status = os.waitpid(child, 0)

    assert parent_ok
    assert os.waitstatus_to_exitcode(status) == 0


def test_every_connection_to_a_changed_server_fails_until_the_change_is_on_record():
    """Two threads reconnecting after a failover: neither reads before the engine knows."""
    store = RedisStore()
    store.accept_server(b"the-server-this-process-used-before")
    pool = store._client.connection_pool

    def connect() -> None:
        connection = pool.connection_class(**pool.connection_kwargs)
        connection.register_connect_callback(store._check_server)
        try:
            connection.connect()
        finally:
            connection.disconnect()

    for _ in range(2):
        with pytest.raises(ServerChanged) as changed:
            connect()
    store.accept_server(changed.value.run_id)  # what the engine does once it has counted it
    connect()


def test_a_changed_server_that_answers_the_breakers_probe_closes_it(settings):
    """A failover long enough to open the breaker: the server that answers the probe is
    another one. The change is recorded (that read bypasses), and the cache is used again."""
    settings.CACHE_BREAKER_THRESHOLD = 1
    settings.CACHE_BREAKER_COOLDOWN = 0.05
    engine = ReadThroughCache(namespace="probe", store_factory=RedisStore)
    engine.reset()
    engine.get_or_fill(1, loader(1))
    assert engine.get_or_fill(1, loader(1)).status == HIT
    engine.store.accept_server(b"the-server-before-the-outage")
    engine.breaker.record_failure()  # the outage that opened it
    engine.store._kept.connection.disconnect()  # the next read reconnects, to the new server
    time.sleep(0.06)

    reads = [engine.get_or_fill(1, loader(1)).status for _ in range(3)]

    assert reads == [BYPASS, MISS, HIT]
    assert not engine.breaker.is_open


def test_the_django_cache_stores_json_not_pickle():
    from django_redis import get_redis_connection

    cache = caches["default"]
    cache.set("json-check", {"a": 1}, timeout=5)

    raw = get_redis_connection().get(cache.make_key("json-check"))

    assert raw == b'{"a": 1}'


class TestCircuitBreaker:
    def test_opens_after_the_threshold_and_probes_once_after_the_cooldown(self):
        breaker = CircuitBreaker(threshold=2, cooldown=0.05)
        breaker.record_failure()
        assert breaker.allow()
        breaker.record_failure()

        assert not breaker.allow()
        threading.Event().wait(0.06)
        assert breaker.allow()  # the probe
        assert not breaker.allow()  # nobody else while it runs
        breaker.record_success()
        assert breaker.allow()

    def test_a_failed_probe_opens_it_again(self):
        breaker = CircuitBreaker(threshold=1, cooldown=0.05)
        breaker.record_failure()
        threading.Event().wait(0.06)
        assert breaker.allow()

        breaker.record_failure()

        assert not breaker.allow()


class TestCircuitBreakerCall:
    def test_returns_the_result_and_a_success_closes_the_breaker(self):
        breaker = CircuitBreaker(threshold=1, cooldown=0.05)
        breaker.record_failure()
        threading.Event().wait(0.06)

        assert breaker.call(lambda a, b: a + b, 2, 3) == 5
        assert not breaker.is_open

    def test_a_store_error_raises_cache_unavailable_and_counts_towards_opening(self):
        breaker = CircuitBreaker(threshold=2, cooldown=60)
        error = RedisConnectionError("refused")

        def fail():
            raise error

        for _ in range(2):
            with pytest.raises(CacheUnavailable) as unavailable:
                breaker.call(fail)
            assert unavailable.value.__cause__ is error

        assert breaker.is_open

    def test_a_probe_that_fails_for_another_reason_lets_the_next_caller_probe(self):
        """An error that is not the store's is not counted, and does not end probing for good."""
        breaker = CircuitBreaker(threshold=1, cooldown=0.05)
        breaker.record_failure()
        threading.Event().wait(0.06)

        def malformed():
            raise ValueError("a reply this code did not expect")

        with pytest.raises(ValueError, match="did not expect"):
            breaker.call(malformed)

        assert breaker.call(lambda: "answered") == "answered"
        assert not breaker.is_open

    def test_while_open_it_raises_without_calling_the_operation(self):
        breaker = CircuitBreaker(threshold=1, cooldown=60)
        breaker.record_failure()
        calls = []

        with pytest.raises(CacheUnavailable) as unavailable:
            breaker.call(calls.append, 1)

        assert (calls, unavailable.value.__cause__) == ([], None)

    def test_only_the_given_errors_count_others_pass_through(self):
        breaker = CircuitBreaker(threshold=1, cooldown=60)

        def fail():
            raise ValueError("not a store error")

        with pytest.raises(ValueError, match="not a store error"):
            breaker.call(fail)
        assert not breaker.is_open

        with pytest.raises(CacheUnavailable):
            breaker.call(fail, errors=(ValueError,))
        assert breaker.is_open

    def test_a_changed_server_fails_the_call_and_counts_as_the_store_answering(self):
        breaker = CircuitBreaker(threshold=2, cooldown=60)
        breaker.record_failure()
        changed = ServerChanged(b"0123abcd")

        def reconnect():
            raise changed

        with pytest.raises(CacheUnavailable) as unavailable:
            breaker.call(reconnect)
        breaker.record_failure()

        assert unavailable.value.__cause__ is changed
        assert not breaker.is_open  # the server answered in between: not two in a row

    def test_a_changed_server_met_by_the_probe_closes_the_breaker(self):
        breaker = CircuitBreaker(threshold=1, cooldown=0.05)
        breaker.record_failure()
        threading.Event().wait(0.06)

        def reconnect():
            raise ServerChanged(b"0123abcd")

        with pytest.raises(CacheUnavailable):
            breaker.call(reconnect)

        assert not breaker.is_open
        assert breaker.allow()


def test_an_invalidation_is_sent_while_the_breaker_is_open_and_its_success_closes_it(
    two_processes, settings
):
    """After a failover other processes serve from the new server at once; a writer whose
    breaker opened on the way must not leave them its writes' old versions until its
    cool-down ends (make drills: Redis failover)."""
    writer, reader, _ = two_processes
    settings.CACHE_BREAKER_COOLDOWN = 600
    reader.get_or_fill(1, loader(1))
    for _ in range(settings.CACHE_BREAKER_THRESHOLD):
        writer.breaker.record_failure()  # the server refused connections for a moment
    assert writer.breaker.is_open

    writer.invalidate(1, 2)  # within the cool-down

    assert not writer.breaker.is_open
    redis_breaker.cache_clear()  # the reader is another process, with a breaker of its own
    read = reader.get_or_fill(1, loader(2))
    assert (read.status, read.entry.version) == (MISS, 2)


def test_a_write_in_a_changed_servers_first_answer_is_repaired_by_the_same_write(settings):
    writer = ReadThroughCache(namespace="protocol-changed", store_factory=RedisStore)
    reader = ReadThroughCache(namespace="protocol-changed", store_factory=RedisStore)
    reader.get_or_fill(1, loader(1))
    writer.get_or_fill(2, loader(1))  # the writer has met the server
    writer.store._server_run_id = b"a-server-before-a-failover"

    writer.invalidate(1, 2)  # the first call meets the new server: this invalidation is lost

    read = reader.get_or_fill(1, loader(2))  # ... but the generation moved on in the same write
    assert (read.status, read.entry.version) == (MISS, 2)
