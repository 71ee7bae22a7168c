"""What the engine and its stores pass between them."""

from dataclasses import dataclass

# A tombstone version above any real one: a deleted row excludes every fill.
DELETED = 2**62


@dataclass(frozen=True)
class Entry:
    """A cached payload and the version of the row it came from (0: no row)."""

    version: int
    payload: bytes


@dataclass(frozen=True)
class Stored:
    """A store's record for one key: an entry, or a tombstone excluding older versions."""

    version: int
    generation: int
    tombstone: bool
    payload: bytes
    schema: int = -1  # none: a tombstone


@dataclass(frozen=True)
class Counter:
    """A counter a read increments in its own round trip.

    `key` is the store's full key; a counter the read creates lives `ttl_ms`, and one
    already there keeps its expiry. A count above `limit` refuses the read before it
    loads anything (`LimitExceeded`).
    """

    key: str
    ttl_ms: int
    limit: int
