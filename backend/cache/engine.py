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
- A read can carry counters (a rate limit's, say) that the store increments in
  the read's own round trip; a count past its limit refuses the read before it
  loads anything.
- Redis failures open a per-process circuit breaker: reads and writes go to the
  database without paying the socket timeout each time. A process that saw
  Redis fail moves the namespace's generation forward when Redis answers again,
  so entries written before the outage (whose invalidations may have been lost)
  are never served.

The store is `RedisStore` (redis_store.py) when the default cache is django-redis,
else `LocalStore` (local_store.py); the breaker is in breaker.py.
"""

import contextlib
import functools
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches

from backend.cache.breaker import (
    STORE_ERRORS,
    CacheUnavailable,
    CircuitBreaker,
    NotAnOutage,
    redis_breaker,
)
from backend.cache.entries import Counter, Entry, Stored
from backend.cache.local_store import LocalStore
from backend.cache.redis_store import RedisStore, ServerChanged
from backend.cache.stats import count

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"

# Invalidations sent in one pipeline by `invalidate_many` (a bulk write's rows).
INVALIDATION_BATCH = 1000


@dataclass(frozen=True)
class Read:
    """What a read found: the entry (from the cache or the loader) and how.

    `counts` are the read's counters' counts, in their order; None when it had none
    or the store was not reached, which counted nothing.
    """

    entry: Entry
    status: str
    counts: tuple[int, ...] | None = None


class LimitExceeded(Exception):
    """A counter of the read passed its limit: the read stopped before loading anything."""

    def __init__(self, counts: tuple[int, ...]):
        super().__init__(f"a counter passed its limit: {counts}")
        self.counts = counts


def store_is_shared() -> bool:
    """Whether the default cache is django-redis: one store for every process."""
    return caches["default"].__class__.__module__.startswith("django_redis")


def default_store():
    """RedisStore when the default cache is django-redis, else a LocalStore."""
    return RedisStore() if store_is_shared() else LocalStore()


_engines: "weakref.WeakSet[ReadThroughCache]" = weakref.WeakSet()


def settle_caches() -> None:
    """Let every cache of this process repair a lost invalidation; for a process about to exit."""
    for engine in list(_engines):
        engine.settle()


def drop_cache_connections() -> None:
    """Close this process's Redis connections; each next use opens a fresh one.

    For a process resumed after a long pause (a thawed Lambda sandbox): a connection
    dropped by the network meanwhile answers nothing, so a read on it would wait for
    the timeout and count as an outage, moving every process's generation on.
    """
    for engine in list(_engines):
        if engine._store is not None:
            engine._store.disconnect()


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

    def _call(self, operation: Callable, *args, even_if_open=False):
        """Run one store operation behind the breaker; raise CacheUnavailable on failure."""
        try:
            return self.breaker.call(operation, *args, even_if_open=even_if_open)
        except CacheUnavailable as unavailable:
            self._record_failure()
            error = unavailable.__cause__
            if error is not None:  # the store failed, rather than the breaker refusing
                count("error")
                if isinstance(error, ServerChanged):
                    self.store.accept_server(error.run_id)  # only now that it is on record
            raise

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

    def counts_in(self, alias: str) -> bool:
        """Whether counters that the Django cache `alias` keeps can ride on this engine's reads.

        True when caching is on and that cache keeps its keys in this engine's store;
        a read given counters then counts them where the cache's own `incr` would.
        """
        return settings.CACHE_ENABLED and self.store.shares_keys_with(alias)

    def get_or_fill(
        self, key_id, load: Callable[[], Entry], counters: tuple[Counter, ...] = ()
    ) -> Read:
        """Return the cached entry for `key_id`, or load it and fill the cache.

        `load` returns the row's current `Entry` (version 0 when there is no row).
        `counters` are incremented in the first lookup's round trip, and only there:
        a miss's later round trips do not count again. Raises LimitExceeded, before
        any load, when a count is above its counter's limit.
        """
        read = self._get_or_fill(key_id, load, counters)
        count(read.status.lower())
        return read

    def _get_or_fill(self, key_id, load: Callable[[], Entry], counters) -> Read:
        if not settings.CACHE_ENABLED:
            return Read(load(), BYPASS)
        key = self._key("entry", key_id)
        try:
            if counters:
                *found, counts = self._call(
                    self.store.read_and_count, key, self._generation_key, counters
                )
                for number, counter in zip(counts, counters, strict=True):
                    if number > counter.limit:
                        raise LimitExceeded(counts)
            else:
                found, counts = self._call(self.store.read, key, self._generation_key), None
        except CacheUnavailable:
            return Read(load(), BYPASS)
        try:
            _, entry = self._usable(*found)
        except CacheUnavailable:
            return Read(load(), BYPASS, counts)
        if entry is not None:
            return Read(entry, HIT, counts)
        entry, status = self._miss(key_id, key, load)
        return Read(entry, status, counts)

    def _miss(self, key_id, key: str, load: Callable[[], Entry]) -> tuple[Entry, str]:
        """After a lookup that found nothing usable: wait for another reader's fill, or fill."""
        lease = self._lease_key(key_id)
        try:
            token, generation, entry = self._take_lease_and_look_again(key, lease)
        except CacheUnavailable:
            return load(), BYPASS
        if entry is None and token is None:
            entry = self._wait_for_fill(key, lease)
        if entry is not None:
            if token is not None:
                self._quietly(self.store.release_lease, lease, token)
            return entry, HIT
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
        return entry, MISS

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
            count("stale_fill_rejected")
            return False
        ttl = settings.CACHE_TTL if entry.version else settings.CACHE_NEGATIVE_TTL
        # Spreads the expiries of hot keys; nothing secret rides on it.
        ttl *= random.uniform(0.9, 1.0)  # nosec B311
        try:
            filled = self._call(
                self.store.fill, key, entry, generation, self.schema, _ms(ttl), lease
            )
        except CacheUnavailable:
            return False
        count("fill" if filled else "stale_fill_rejected")
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
        # Sent even while the breaker is open: the store may be back (a failover) while
        # other processes already serve from it, and until this process's cool-down ends
        # they would serve what this write replaced. In a real outage a write pays up to
        # REDIS_TIMEOUT_SECONDS for it. A failure is recorded by _call; the rest of the
        # batches are covered by the generation too.
        try:
            for start in range(0, len(pairs), INVALIDATION_BATCH):
                batch = pairs[start : start + INVALIDATION_BATCH]
                self._call(self.store.invalidate, batch, ttl_ms, even_if_open=True)
        except CacheUnavailable as unavailable:
            if not isinstance(unavailable.__cause__, NotAnOutage):
                return  # the store is away: a repair now would only wait for it again
        # A process that only writes from now on must still repair what it lost, a batch
        # just lost included when the store answered it (a changed server).
        with contextlib.suppress(CacheUnavailable):
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
        with contextlib.suppress(*STORE_ERRORS):
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
