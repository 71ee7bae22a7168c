"""What a load saw, checked against what it wrote: stale reads and lost writes.

Writers record each write the server acknowledged (a 2xx answer): the item's new
version and the fields sent. Readers take the newest acknowledged version of the
item just before sending a read, and check the answer against it. A read is stale
when it serves an older version than one whose write was acknowledged before the
read was sent: a client saw its write succeed, then read the item and got the old
one. Versions only grow (items/models.py), so no clock is needed.

A write whose answer never came (a connection cut in a fault) may or may not have
committed; it is not acknowledged, so it can be neither lost nor stale.

The same checker serves the drills, the soak and the peer caches of `make bench`.
"""

import threading
from dataclasses import dataclass, field

DELETED = float("inf")  # newer than any version: after a delete, any item served is stale


@dataclass(frozen=True)
class StaleRead:
    item_id: int
    served: int
    acknowledged: float


@dataclass
class History:
    """Every acknowledged write of a load, and every stale read it met. Thread-safe."""

    _newest: dict[int, tuple[float, dict]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    reads: int = 0
    stale: list[StaleRead] = field(default_factory=list)

    def acknowledged(self, item_id: int, version: int, fields: dict | None = None) -> None:
        """A write of `item_id` was answered 2xx with `version`; `fields`, what it wrote."""
        with self._lock:
            current = self._newest.get(item_id)
            if current is None or version > current[0]:
                self._newest[item_id] = (version, fields or {})

    def acknowledged_delete(self, item_id: int) -> None:
        with self._lock:
            self._newest[item_id] = (DELETED, {})

    def newest(self, item_id: int) -> float:
        """The newest acknowledged version of the item, 0 if none: take it before sending a read."""
        with self._lock:
            return self._newest.get(item_id, (0, None))[0]

    def served(self, item_id: int, newest_before: float, version: int | None) -> bool:
        """Check a read's answer (`version` None for a 404); True when it was fresh."""
        served = 0 if version is None else version
        fresh = (served >= newest_before) if newest_before != DELETED else version is None
        with self._lock:
            self.reads += 1
            if not fresh:
                self.stale.append(StaleRead(item_id, served, newest_before))
        return fresh

    def lost_writes(self, rows: dict[int, tuple[int, dict]]) -> list[int]:
        """Ids whose newest acknowledged write the database does not hold.

        `rows` maps each item id to its row's (version, fields) as read from the
        database after the load. A newer version than acknowledged is a write whose
        answer was lost in transit, not a lost write.
        """
        with self._lock:
            newest = dict(self._newest)
        return [
            item_id
            for item_id, (version, fields) in sorted(newest.items())
            if not _holds(rows.get(item_id), version, fields)
        ]

    @property
    def acknowledged_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._newest)


def _holds(row: tuple[int, dict] | None, version: float, fields: dict) -> bool:
    """Whether a row (None: absent) holds an acknowledged write or a later one."""
    if version == DELETED:
        return row is None
    if row is None or row[0] < version:
        return False
    return row[0] > version or all(row[1].get(name) == value for name, value in fields.items())
