"""A cache hit without its Redis round trip: the item read with the cache's answer given.

bench/hit_path_cpu.py and bench/instructions.py measure what a hit costs apart from
the round trip this way.
"""

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def read_given(answer: Callable[[int], tuple]) -> Iterator[None]:
    """Within the block, item reads return `answer(item_id)` (what `read_item` returns)
    instead of reading the cache, on DRF's path and the anonymous shortcut alike; a
    throttle's counters, which ride on the shortcut's read, count as if counted."""
    from items import views  # (bench/ imports the service late)

    def read_item_and_count(item_id, counters):
        return (*answer(item_id), (1,) * len(counters))

    original = views.read_item, views.read_item_and_count
    views.read_item, views.read_item_and_count = answer, read_item_and_count
    try:
        yield
    finally:
        views.read_item, views.read_item_and_count = original
