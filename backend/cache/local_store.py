"""The read-through protocol in this process's memory, for running without Redis."""

import secrets
import threading
import time

from backend.cache.entries import Counter, Entry, Stored


class LocalStore:
    """The same protocol in this process's memory, for running without Redis."""

    def __init__(self):
        self._data: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def disconnect(self) -> None:
        """Nothing to close: the entries live in this process."""

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

    def read_and_count(
        self, key: str, generation_key: str, counters: tuple[Counter, ...]
    ) -> tuple[int, Stored | None, tuple[int, ...]]:
        with self._lock:
            now, counts = time.monotonic(), []
            for counter in counters:
                expires, number = self._data.get(counter.key, (0.0, 0))
                if expires < now:  # absent or expired: a new counter with its own lifetime
                    expires, number = now + counter.ttl_ms / 1000, 0
                self._data[counter.key] = (expires, number + 1)
                counts.append(number + 1)
            return self._get(generation_key) or 0, self._get(key), tuple(counts)

    def shares_keys_with(self, alias: str) -> bool:
        """Never: this store's keys are in this object alone, no Django cache's."""
        return False

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
