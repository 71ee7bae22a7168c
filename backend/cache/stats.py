"""Process-wide counts of what the cache engine did, for the metrics middleware."""

import threading
from collections import Counter

_counts: Counter = Counter()
_counts_lock = threading.Lock()
COUNTER_NAMES = ("hit", "miss", "fill", "stale_fill_rejected", "bypass", "error")


def count(name: str) -> None:
    with _counts_lock:
        _counts[name] += 1


def cache_stats() -> dict[str, int]:
    """Process-wide counts since start: hit, miss, fill, stale_fill_rejected, bypass, error."""
    with _counts_lock:
        return {name: _counts[name] for name in COUNTER_NAMES}
