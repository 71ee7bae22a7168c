"""A read-through cache that never serves a value older than a committed write.

The engine knows nothing of items: it stores opaque payloads under a namespace,
each tagged with the version of the row it was rendered from and the schema (the
payload's format) it was rendered in.

- Fills are compare-and-set on that version: a fill loses to any newer version
  or tombstone already stored, so a reader that loaded a row before a write
  committed cannot put the old row back (the stale-fill race).
- Invalidation leaves a short-lived tombstone carrying the committed version;
  a reader whose load is older than the tombstone's lifetime gives up its fill,
  so an old value can never outlive the tombstone that excludes it.
- The schema is a field of the entry, not part of its key: two releases of the
  code, running side by side in a rolling deploy, read only their own schema's
  entries, yet each one's invalidations reach the key the other fills.
- Concurrent misses on one key take a lease: one loads, the others wait briefly
  for its fill and fall back to loading themselves if it does not come.
- Redis failures open a per-process circuit breaker: reads and writes go to the
  database without paying the socket timeout each time. A process that saw
  Redis fail moves the namespace's generation forward when Redis answers again,
  so entries written before the outage (whose invalidations may have been lost)
  are never served.

Two stores implement the protocol: `RedisStore` (Lua scripts, shared by every
process) and `LocalStore` (a dict under a lock, for the embedded default).
"""

import contextlib
import functools
import os
import random
import re
import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from hiredis import pack_command
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

# A tombstone version above any real one: a deleted row excludes every fill.
DELETED = 2**62

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"

# Invalidations sent in one pipeline by `invalidate_many` (a bulk write's rows).
INVALIDATION_BATCH = 1000


@dataclass(frozen=True)
class Entry:
    """A cached payload and the version of the row it came from (0: no row)."""

    version: int
    payload: bytes


@dataclass(frozen=True)
class Read:
    """What a read found: the entry (from the cache or the loader) and how."""

    entry: Entry
    status: str


class CacheUnavailable(Exception):
    """The store failed or the circuit breaker is open."""


# --- Counters --------------------------------------------------------------------

_counts: Counter = Counter()
_counts_lock = threading.Lock()
COUNTER_NAMES = ("hit", "miss", "fill", "stale_fill_rejected", "bypass", "error")


def _count(name: str) -> None:
    with _counts_lock:
        _counts[name] += 1


def cache_stats() -> dict[str, int]:
    """Process-wide counts since start: hit, miss, fill, stale_fill_rejected, bypass, error."""
    with _counts_lock:
        return {name: _counts[name] for name in COUNTER_NAMES}


# --- Circuit breaker ---------------------------------------------------------------


class CircuitBreaker:
    """Closed until `threshold` failures in a row; then open for `cooldown` seconds.

    After the cool-down one caller at a time probes the store; its success closes
    the breaker, its failure opens it again.
    """

    def __init__(self, threshold: int, cooldown: float):
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        if self._opened_at is None:  # the common case, read without the lock
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or time.monotonic() - self._opened_at < self.cooldown:
                return False
            self._probing = True
            return True

    def record_success(self) -> None:
        if self._failures == 0 and self._opened_at is None:
            return
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._opened_at is not None or self._failures >= self.threshold:
                self._opened_at = time.monotonic()


@functools.cache
def redis_breaker() -> CircuitBreaker:
    """The process's one circuit breaker for the cache server, shared by all its users."""
    return CircuitBreaker(settings.CACHE_BREAKER_THRESHOLD, settings.CACHE_BREAKER_COOLDOWN)


# --- Stores ------------------------------------------------------------------------

# KEYS[1]: entry, KEYS[2]: the filler's lease or none. ARGV: version, generation,
# payload, ttl ms, schema, lease token. Loses to a higher version (entry or tombstone)
# and to the same live entry; releases the lease, while it is still this filler's, either way.
FILL_SCRIPT = """
if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
local current = redis.call('HMGET', KEYS[1], 'v', 'g', 't', 's')
local version = tonumber(ARGV[1])
if current[1] then
  local stored = tonumber(current[1])
  if version < stored then return 0 end
  if version == stored and current[3] == '0' and current[2] == ARGV[2]
    and current[4] == ARGV[5] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[2], 't', '0', 'p', ARGV[3], 's', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS[1]: entry. ARGV: version, ttl ms. Never lowers a recorded version.
INVALIDATE_SCRIPT = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
if stored and stored > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


# KEYS[1]: lease. ARGV: token. Deletes the lease only while it is still this holder's.
RELEASE_LEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# KEYS[1]: generation. ARGV: minimum. Raises the counter to at least the minimum.
RAISE_GENERATION_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return current end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(ARGV[1])
"""


class ServerChanged(RedisError):
    """A reconnection reached another Redis server than this process used before.

    A failover to a replica that had not yet received the last writes, or a restart
    from an older snapshot, loses tombstones without any command failing. The
    engine treats it as a failure: the generation advances before the next hit.
    """

    def __init__(self, run_id: bytes):
        super().__init__(f"the cache server changed (run_id {run_id.decode()})")
        self.run_id = run_id


@dataclass(frozen=True)
class Stored:
    version: int
    generation: int
    tombstone: bool
    payload: bytes
    schema: int = -1  # none: a tombstone


class RedisStore:
    """The protocol on Redis, through django-redis's connection pool."""

    def __init__(self, alias: str = "default"):
        from django_redis import get_redis_connection

        self._client = get_redis_connection(alias)
        self._kept = threading.local()
        self._server_run_id: bytes | None = None
        self._fill = self._client.register_script(FILL_SCRIPT)
        self._invalidate = self._client.register_script(INVALIDATE_SCRIPT)
        self._raise_generation = self._client.register_script(RAISE_GENERATION_SCRIPT)
        self._release_lease = self._client.register_script(RELEASE_LEASE_SCRIPT)

    def read(self, key: str, generation_key: str) -> tuple[int, Stored | None]:
        """Return the current generation and the stored record, in one round trip.

        This is every cache hit's only Redis call, so it goes over this thread's
        kept connection (`_thread_connection`) with the commands packed by hiredis:
        checking a connection out of redis-py's pool and back, and packing through
        redis-py, cost more CPU than the round trip itself (docs/benchmarks.md).
        """
        return self._read_replies(*self._exchange(self._read_request(key, generation_key), 2))

    def take_lease_and_read(
        self, lease_key: str, ttl_ms: int, key: str, generation_key: str
    ) -> tuple[str | None, int, Stored | None]:
        """Take the lease with a new token (None: another reader holds it), then `read`.

        One round trip on the kept connection, as `read`. The lease is read back
        rather than judged by SET's reply: if `_exchange` sends the commands again
        after a connection reset, the lease the first sending took is still this
        reader's, not another's to wait for.
        """
        token = secrets.token_hex(8)
        request = pack_command(("SET", lease_key, token, "NX", "PX", ttl_ms))
        request += pack_command(("GET", lease_key))
        _, holder, *replies = self._exchange(request + self._read_request(key, generation_key), 4)
        return (token if holder == token.encode() else None), *self._read_replies(*replies)

    @staticmethod
    def _read_request(key: str, generation_key: str) -> bytes:
        return pack_command(("GET", generation_key)) + pack_command(
            ("HMGET", key, "v", "g", "t", "p", "s")
        )

    @staticmethod
    def _read_replies(generation, fields) -> tuple[int, Stored | None]:
        version, entry_generation, tombstone, payload, schema = fields
        stored = None
        if version is not None:
            stored = Stored(
                int(version),
                int(entry_generation or -1),
                tombstone == b"1",
                payload or b"",
                int(schema or -1),
            )
        return int(generation or 0), stored

    def _exchange(self, request: bytes, replies: int) -> list:
        """Send pipelined commands on this thread's connection and read their replies."""
        connection, kept = self._thread_connection()
        try:
            return self._send_and_read(connection, request, replies)
        except RedisConnectionError:
            # A kept connection may have been closed by the server while this
            # thread was idle (its idle timeout, a failover): try a fresh one once,
            # as redis-py's pool does when it hands out a closed connection.
            if not kept:
                raise
        return self._send_and_read(connection, request, replies)

    @staticmethod
    def _send_and_read(connection, request: bytes, replies: int) -> list:
        try:
            connection.send_packed_command([request], check_health=False)
            return [connection.read_response() for _ in range(replies)]
        except BaseException:
            connection.disconnect()  # its state is unknown: the next use reconnects
            raise

    def _thread_connection(self):
        """This thread's own connection, and whether it was used before.

        Made with the pool's settings (address, TLS, credentials, timeouts) but kept
        outside it, so there is at most one per thread serving requests; the pool
        stays bounded by REDIS_MAX_CONNECTIONS for everything else.
        """
        connection = getattr(self._kept, "connection", None)
        if connection is not None and connection.pid == os.getpid():
            return connection, True
        pool = self._client.connection_pool
        connection = self._kept.connection = pool.connection_class(**pool.connection_kwargs)
        connection.register_connect_callback(self._check_server)
        return connection, False

    def _check_server(self, connection) -> None:
        """Raise ServerChanged when a kept connection (re)connects to another server.

        A server's run_id is new at every start. Every hit reads over a kept
        connection, so after a failover each process notices on its first read.
        The fill and invalidation connections of the pool are not checked: a fill
        they make before that read is under the old generation, which the advance
        leaves behind.
        """
        connection.send_command("INFO", "server", check_health=False)
        try:
            found = re.search(rb"run_id:(\w+)", connection.read_response())
        except ResponseError:  # INFO denied to this user (an ACL): nothing to compare
            return
        if found is None:  # a server that does not tell its run_id
            return
        run_id = found.group(1)
        if self._server_run_id is None:
            self._server_run_id = run_id
        elif run_id != self._server_run_id:
            # Every connection raises until the engine has recorded the change and
            # calls accept_server: none reads the new server before that.
            raise ServerChanged(run_id)

    def accept_server(self, run_id: bytes) -> None:
        """Take `run_id` as the server from now on (once its change is on record)."""
        self._server_run_id = run_id

    def fill(
        self, key: str, entry: Entry, generation: int, schema: int, ttl_ms: int, lease=None
    ) -> bool:
        """Store the entry unless a newer one or a tombstone is there.

        `lease`, a (lease key, token) pair, is released in the same round trip.
        """
        lease_key, token = lease or (None, "")
        keys = [key, lease_key] if lease_key else [key]
        args = [entry.version, generation, entry.payload, ttl_ms, schema, token]
        return bool(self._fill(keys=keys, args=args))

    def invalidate(self, versions: list[tuple[str, int]], ttl_ms: int) -> None:
        """Invalidate each key at its version, in one round trip for one key.

        More keys go in one pipeline: a round trip to check the script is loaded,
        and one for all of them.
        """
        if len(versions) == 1:
            [(key, version)] = versions
            self._invalidate(keys=[key], args=[version, ttl_ms])
            return
        pipeline = self._client.pipeline(transaction=False)
        for key, version in versions:
            self._invalidate(keys=[key], args=[version, ttl_ms], client=pipeline)
        pipeline.execute()

    def release_lease(self, key: str, token: str) -> None:
        self._release_lease(keys=[key], args=[token])

    def lease_held(self, key: str) -> bool:
        return bool(self._client.exists(key))

    def advance_generation(self, generation_key: str) -> int:
        return int(self._client.incr(generation_key))

    def raise_generation(self, generation_key: str, minimum: int) -> int:
        return int(self._raise_generation(keys=[generation_key], args=[minimum]))


class LocalStore:
    """The same protocol in this process's memory, for running without Redis."""

    def __init__(self):
        self._data: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def _get(self, key: str):
        found = self._data.get(key)
        if found is None or found[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return found[1]

    def _put(self, key: str, value: object, ttl_ms: int) -> None:
        self._data[key] = (time.monotonic() + ttl_ms / 1000, value)

    def read(self, key: str, generation_key: str) -> tuple[int, Stored | None]:
        with self._lock:
            return self._get(generation_key) or 0, self._get(key)

    def take_lease_and_read(
        self, lease_key: str, ttl_ms: int, key: str, generation_key: str
    ) -> tuple[str | None, int, Stored | None]:
        with self._lock:
            token = None
            if self._get(lease_key) is None:
                token = secrets.token_hex(8)
                self._put(lease_key, token, ttl_ms)
            return token, self._get(generation_key) or 0, self._get(key)

    def fill(
        self, key: str, entry: Entry, generation: int, schema: int, ttl_ms: int, lease=None
    ) -> bool:
        with self._lock:
            if lease is not None:
                self._release(*lease)
            current = self._get(key)
            if current is not None and (
                entry.version < current.version
                or (
                    entry.version == current.version
                    and not current.tombstone
                    and current.generation == generation
                    and current.schema == schema
                )
            ):
                return False
            self._put(key, Stored(entry.version, generation, False, entry.payload, schema), ttl_ms)
            return True

    def invalidate(self, versions: list[tuple[str, int]], ttl_ms: int) -> None:
        with self._lock:
            for key, version in versions:
                current = self._get(key)
                if current is None or current.version <= version:
                    self._put(key, Stored(version, -1, True, b""), ttl_ms)

    def release_lease(self, key: str, token: str) -> None:
        with self._lock:
            self._release(key, token)

    def _release(self, key: str, token: str) -> None:
        if self._get(key) == token:
            del self._data[key]

    def lease_held(self, key: str) -> bool:
        with self._lock:
            return self._get(key) is not None

    def advance_generation(self, generation_key: str) -> int:
        with self._lock:
            generation = (self._get(generation_key) or 0) + 1
            self._data[generation_key] = (float("inf"), generation)
            return generation

    def raise_generation(self, generation_key: str, minimum: int) -> int:
        with self._lock:
            generation = max(self._get(generation_key) or 0, minimum)
            self._data[generation_key] = (float("inf"), generation)
            return generation


def default_store():
    """RedisStore when the default cache is django-redis, else a LocalStore."""
    if caches["default"].__class__.__module__.startswith("django_redis"):
        return RedisStore()
    return LocalStore()


# --- The engine ----------------------------------------------------------------------

_engines: "weakref.WeakSet[ReadThroughCache]" = weakref.WeakSet()


def settle_caches() -> None:
    """Let every cache of this process repair a lost invalidation; for a process about to exit."""
    for engine in list(_engines):
        engine.settle()


class ReadThroughCache:
    """Get-or-fill and invalidate for one namespace of versioned entries.

    Settings (see README): CACHE_TTL, CACHE_NEGATIVE_TTL, CACHE_TOMBSTONE_TTL, CACHE_LOCK_WAIT,
    CACHE_BREAKER_THRESHOLD, CACHE_BREAKER_COOLDOWN. `CACHE_ENABLED = False`
    turns caching off (every read goes to the loader).
    """

    def __init__(
        self, namespace: str, schema: int = 1, store_factory: Callable[[], object] = default_store
    ):
        self.namespace = namespace
        self.schema = schema
        self._store_factory = store_factory
        self._store = None
        self._store_lock = threading.Lock()
        # Failures this process saw (an invalidation may be among them), and how many
        # of them the last generation advance covers: it is suspect while they differ.
        self._failures = 0
        self._failures_repaired = 0
        self._failures_lock = threading.Lock()
        self._generation_lock = threading.Lock()
        self._floor_generation = 0
        _engines.add(self)

    # Keys go through the default cache's make_key, so KEY_PREFIX applies here too.
    def _key(self, kind: str, key_id) -> str:
        return self._keys.make_key(f"{self.namespace}:{kind}:{key_id}")

    def _lease_key(self, key_id) -> str:
        # One lease per schema: a reader never waits for a fill it could not use.
        return self._key(f"lease:s{self.schema}", key_id)

    @functools.cached_property
    def _generation_key(self) -> str:
        # Made once, like `_keys`: every read sends it.
        return self._keys.make_key(f"{self.namespace}:generation")

    @functools.cached_property
    def _keys(self):
        # Looked up once, like the store: `caches[...]` costs more than make_key.
        return caches["default"]

    @property
    def store(self):
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = self._store_factory()
        return self._store

    @property
    def breaker(self) -> CircuitBreaker:
        return redis_breaker()

    def reset(self) -> None:
        """Forget the store and breaker state (after settings change, in tests)."""
        self._store = None
        self.__dict__.pop("_keys", None)
        self.__dict__.pop("_generation_key", None)
        redis_breaker.cache_clear()
        self._failures = self._failures_repaired = 0
        self._floor_generation = 0

    def _call(self, operation: Callable, *args):
        """Run one store operation behind the breaker; raise CacheUnavailable on failure."""
        if not self.breaker.allow():
            self._record_failure()
            raise CacheUnavailable("circuit open")
        try:
            result = operation(*args)
        except (RedisError, OSError) as error:
            _count("error")
            self._record_failure()
            if isinstance(error, ServerChanged):  # not an outage: the breaker ignores it
                self.store.accept_server(error.run_id)  # only now that it is on record
            else:
                self.breaker.record_failure()
            raise CacheUnavailable(str(error)) from error
        self.breaker.record_success()
        return result

    def _record_failure(self) -> None:
        with self._failures_lock:
            self._failures += 1

    @property
    def _generation_suspect(self) -> bool:
        return self._failures != self._failures_repaired

    def _current_generation(self, found: int) -> int:
        """The generation to trust: advanced once after this process saw a failure.

        Reads racing the advance in other threads wait for it, then compare
        against the advanced value, so none of them serves a pre-outage entry.
        """
        # The common case takes no lock: the advance sets the floor before it marks
        # the failures repaired, so a reader that sees them repaired sees the new floor.
        if not self._generation_suspect:
            if found >= self._floor_generation:
                return found
            # Either a read that raced this process's advance, or the store lost its
            # data (a restart without persistence, a failover to an empty node). Put
            # the counter back up, or this process and the others would keep
            # overwriting each other's entries under two generations.
            return self._call(
                self.store.raise_generation, self._generation_key, self._floor_generation
            )
        self._advance_generation(self._call)
        return max(found, self._floor_generation)

    def _advance_generation(self, call: Callable) -> None:
        """Move the generation past every entry written before this process's failures.

        Only the failures seen before the advance count as repaired: one during
        it (an invalidation lost after the new generation was handed out) keeps
        the process suspect, so it advances again.
        """
        with self._generation_lock:
            failures = self._failures
            if failures == self._failures_repaired:
                return
            advanced = call(self.store.advance_generation, self._generation_key)
            # Never lower: a counter that Redis lost restarts below this floor.
            self._floor_generation = max(self._floor_generation, advanced)
            self._failures_repaired = failures

    def _lookup(self, key: str) -> tuple[int, Entry | None]:
        return self._usable(*self._call(self.store.read, key, self._generation_key))

    def _usable(self, generation: int, stored: Stored | None) -> tuple[int, Entry | None]:
        """The generation to fill under, and the stored entry if it may be served."""
        generation = self._current_generation(generation)
        if (
            stored is None
            or stored.tombstone
            or stored.generation != generation
            or stored.schema != self.schema
        ):
            return generation, None
        return generation, Entry(stored.version, stored.payload)

    def get_or_fill(self, key_id, load: Callable[[], Entry]) -> Read:
        """Return the cached entry for `key_id`, or load it and fill the cache.

        `load` returns the row's current `Entry` (version 0 when there is no row).
        """
        read = self._get_or_fill(key_id, load)
        _count(read.status.lower())
        return read

    def _get_or_fill(self, key_id, load: Callable[[], Entry]) -> Read:
        if not settings.CACHE_ENABLED:
            return Read(load(), BYPASS)
        key = self._key("entry", key_id)
        try:
            _, entry = self._lookup(key)
        except CacheUnavailable:
            return Read(load(), BYPASS)
        if entry is not None:
            return Read(entry, HIT)
        lease = self._lease_key(key_id)
        try:
            token, generation, entry = self._take_lease_and_look_again(key, lease)
        except CacheUnavailable:
            return Read(load(), BYPASS)
        if entry is None and token is None:
            entry = self._wait_for_fill(key, lease)
        if entry is not None:
            if token is not None:
                self._quietly(self.store.release_lease, lease, token)
            return Read(entry, HIT)
        started = time.monotonic()
        released = False
        try:
            entry = load()
            released = self._fill(
                key, entry, generation, started, lease=(lease, token) if token else None
            )
        finally:  # a failed load (the database away) holds nobody up
            if token is not None and not released:
                self._quietly(self.store.release_lease, lease, token)
        return Read(entry, MISS)

    def _take_lease_and_look_again(
        self, key: str, lease: str
    ) -> tuple[str | None, int, Entry | None]:
        """Try to lead the fill of `key`; the token says whether this reader leads.

        The lease is taken with a token, so a leader never frees a successor's lease
        after its own expired (a load slower than the lease). The entry is read again
        in the same round trip: a previous leader may have filled it and let go of
        its lease since this reader's lookup.
        """
        ttl_ms = _ms(settings.CACHE_LOCK_WAIT * 5)
        token, *found = self._call(
            self.store.take_lease_and_read, lease, ttl_ms, key, self._generation_key
        )
        try:
            return token, *self._usable(*found)
        except CacheUnavailable:
            if token is not None:
                self._quietly(self.store.release_lease, lease, token)
            raise

    def _wait_for_fill(self, key: str, lease: str) -> Entry | None:
        """Poll briefly for the leader's fill; None when it does not come in time.

        Also None as soon as the leader is done without a fill this reader can use
        (after a delete, a tombstone refuses every fill for its lifetime).
        """
        deadline = time.monotonic() + settings.CACHE_LOCK_WAIT
        while time.monotonic() < deadline:
            time.sleep(0.005)
            try:
                _, entry = self._lookup(key)
                if entry is None and not self._call(self.store.lease_held, lease):
                    # The leader fills before it lets go: one more look sees that fill.
                    return self._lookup(key)[1]
            except CacheUnavailable:
                return None
            if entry is not None:
                return entry
        return None

    def _fill(self, key: str, entry: Entry, generation: int, started: float, lease=None) -> bool:
        """Fill unless the load is too old, releasing `lease` in the same call.

        True when the store answered: the lease, if any, is no longer held.
        """
        # A load older than a tombstone's lifetime may predate a write whose
        # tombstone has already expired: too old to be trusted, so not stored.
        if time.monotonic() - started >= settings.CACHE_TOMBSTONE_TTL / 2:
            _count("stale_fill_rejected")
            return False
        ttl = settings.CACHE_TTL if entry.version else settings.CACHE_NEGATIVE_TTL
        ttl *= random.uniform(0.9, 1.0)  # spread the expiries of hot keys
        try:
            filled = self._call(
                self.store.fill, key, entry, generation, self.schema, _ms(ttl), lease
            )
        except CacheUnavailable:
            return False
        _count("fill" if filled else "stale_fill_rejected")
        return True

    def invalidate(self, key_id, version: int) -> None:
        """Record that `version` of the row committed; older entries are gone.

        Pass `DELETED` for a deleted row. Never raises: on failure the process
        advances the generation as soon as the store answers again, on its next
        read or write, or when it exits (`settle`).
        """
        self.invalidate_many([(key_id, version)])

    def invalidate_many(self, versions: list[tuple[object, int]]) -> None:
        """`invalidate` for each (key_id, version) pair, in batches of INVALIDATION_BATCH."""
        pairs = [(self._key("entry", key_id), version) for key_id, version in versions]
        ttl_ms = _ms(settings.CACHE_TOMBSTONE_TTL)
        # A failure is recorded by _call; the rest are covered by the generation too.
        with contextlib.suppress(CacheUnavailable):
            for start in range(0, len(pairs), INVALIDATION_BATCH):
                self._call(self.store.invalidate, pairs[start : start + INVALIDATION_BATCH], ttl_ms)
            # A process that only writes from now on must still repair what it lost.
            self._repair_if_suspect()

    def invalidate_all(self) -> int:
        """Make every entry of this namespace a miss, for every process; return the generation.

        For rows changed where no invalidation runs (a data migration, SQL): it
        advances the namespace's generation. Raises CacheUnavailable when the store
        cannot be reached, so that a caller can say the entries may still be served.
        """
        advanced = self._call(self.store.advance_generation, self._generation_key)
        with self._generation_lock:
            self._floor_generation = max(self._floor_generation, advanced)
        return advanced

    def settle(self) -> None:
        """Advance the generation if this process lost an invalidation: call before exiting.

        The breaker may still be open from the outage that lost it: a process about
        to exit tries the store once regardless, since there is no later request
        to repair it. Still unreachable, it stays lost: the bound in
        docs/caching.md (CACHE_TTL) applies.
        """
        with contextlib.suppress(RedisError, OSError):
            self._advance_generation(lambda operation, *args: operation(*args))

    def _repair_if_suspect(self) -> None:
        """Advance the generation now if this process lost an invalidation; else no call."""
        if self._generation_suspect:
            self._advance_generation(self._call)

    def _quietly(self, operation: Callable, *args) -> None:
        with contextlib.suppress(CacheUnavailable):  # recorded by _call
            self._call(operation, *args)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
