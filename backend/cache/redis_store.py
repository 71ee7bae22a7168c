"""The read-through protocol on Redis, shared by every process: Lua scripts for the
writes, one pipelined round trip over a kept connection for each read."""

import os
import re
import secrets
import threading
from pathlib import Path

from django.conf import settings
from hiredis import pack_command
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from backend.cache.breaker import NotAnOutage
from backend.cache.entries import Counter, Entry, Stored
from backend.cache.kept_connection import KeptConnection

LUA_SCRIPTS = Path(__file__).resolve().parent / "lua"


def lua_script(name: str) -> str:
    """The text of `lua/<name>.lua`; each is read once, when this module loads."""
    return (LUA_SCRIPTS / f"{name}.lua").read_text()


FILL_SCRIPT = lua_script("fill")
INVALIDATE_SCRIPT = lua_script("invalidate")
RELEASE_LEASE_SCRIPT = lua_script("release_lease")
RAISE_GENERATION_SCRIPT = lua_script("raise_generation")


class ServerChanged(RedisError, NotAnOutage):
    """A reconnection reached another Redis server than this process used before.

    A failover to a replica that had not yet received the last writes, or a restart
    from an older snapshot, loses tombstones without any command failing. The
    engine treats it as a failure: the generation advances before the next hit.
    The server answered, though: for the circuit breaker it is not an outage.
    """

    def __init__(self, run_id: bytes):
        super().__init__(f"the cache server changed (run_id {run_id.decode()})")
        self.run_id = run_id


class RedisStore:
    """The protocol on Redis, through django-redis's connection pool."""

    def __init__(self, alias: str = "default"):
        from django_redis import get_redis_connection

        self._client = get_redis_connection(alias)
        self._config = settings.CACHES[alias]
        self._kept = threading.local()
        self._server_run_id: bytes | None = None
        self._fill = self._client.register_script(FILL_SCRIPT)
        self._invalidate = self._client.register_script(INVALIDATE_SCRIPT)
        self._raise_generation = self._client.register_script(RAISE_GENERATION_SCRIPT)
        self._release_lease = self._client.register_script(RELEASE_LEASE_SCRIPT)

    def read(self, key: str, generation_key: str) -> tuple[int, Stored | None]:
        """Return the current generation and the stored record, in one round trip.

        This is every cache hit's only Redis call, so it goes over this thread's
        kept connection (`KeptConnection`) with the commands packed by hiredis:
        checking a connection out of redis-py's pool and back, and packing through
        redis-py, cost more CPU than the round trip itself (docs/benchmarks.md).
        """
        return self._read_replies(*self._exchange(self._read_request(key, generation_key), 2))

    def read_and_count(
        self, key: str, generation_key: str, counters: tuple[Counter, ...]
    ) -> tuple[int, Stored | None, tuple[int, ...]]:
        """`read`, and each counter incremented, in the same round trip; with their counts.

        Each counter is `INCR key` then `PEXPIRE key ttl NX` (Redis 7.0+): a new counter
        gets its lifetime, an existing one keeps its expiry, and one that expires between
        the two is not created again. An integer, as django-redis's `incr` and `get` of the
        same key read and write it. Plain commands, not a script: running a script costs
        Redis about half as much again as the rest of the round trip (docs/caching.md).
        """
        counting = b"".join(
            pack_command(("INCR", c.key)) + pack_command(("PEXPIRE", c.key, c.ttl_ms, "NX"))
            for c in counters
        )
        request = self._read_request(key, generation_key) + counting
        generation, fields, *counted = self._exchange(request, 2 + 2 * len(counters))
        return *self._read_replies(generation, fields), tuple(counted[::2])

    def shares_keys_with(self, alias: str) -> bool:
        """Whether the Django cache `alias` is django-redis at this store's location.

        django-redis keeps one connection pool per URL, so that is this store's server
        and database. Judged from the settings, not by asking the cache for its client:
        a django-redis cache whose client was made pays for closing it after every
        request.
        """
        config = settings.CACHES.get(alias, {})
        return (
            config.get("BACKEND") == self._config["BACKEND"]
            and config.get("LOCATION") == self._config["LOCATION"]
        )

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
        kept = self._thread_connection()
        was_open = kept.is_open
        try:
            return kept.exchange(request, replies)
        except RedisConnectionError:
            # A kept connection may have been closed by the server while this
            # thread was idle (its idle timeout, a failover): try a fresh one once,
            # as redis-py's pool does when it hands out a closed connection. One
            # that had to connect first failed to connect: that is not tried again.
            if not was_open:
                raise
        return kept.exchange(request, replies)

    def _thread_connection(self) -> KeptConnection:
        """This thread's own connection.

        Made with the pool's settings (address, TLS, credentials, timeouts) but kept
        outside it, so there is at most one per thread serving requests; the pool
        stays bounded by REDIS_MAX_CONNECTIONS for everything else.
        """
        kept = getattr(self._kept, "connection", None)
        if kept is not None and kept.connection.pid == os.getpid():
            return kept
        pool = self._client.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        connection.register_connect_callback(self._check_server)
        kept = self._kept.connection = KeptConnection(connection)
        return kept

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

    def disconnect(self) -> None:
        """Close this thread's kept connection and the pool's; the next use opens new ones."""
        if (kept := getattr(self._kept, "connection", None)) is not None:
            kept.disconnect()
        self._client.connection_pool.disconnect()

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
