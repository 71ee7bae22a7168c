"""What the items app caches, and the only code that touches that cache.

One entry per item id, tagged with the item's version: its `updated_at` and its
rendered JSON bytes, so a hit is served, validators included, without the ORM,
the serializer or the renderer. An absent id is cached briefly as version 0.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from rest_framework.renderers import JSONRenderer

from backend.cache import DELETED, Counter, Entry, ReadThroughCache, store_is_shared
from items.models import Item
from items.serializers import ItemSerializer

# Bump when the stored representation changes. Entries carry it: during a rolling
# deploy each release reads only entries of its own schema, and the invalidations
# of both reach the same keys (docs/caching.md).
SCHEMA_VERSION = 3

_renderer = JSONRenderer()
item_cache = ReadThroughCache(namespace="item", schema=SCHEMA_VERSION)


@dataclass(frozen=True)
class CachedItem:
    """An item's response as stored: its version, last change and JSON body."""

    version: int
    updated_at: datetime
    body: bytes


def _load(item_id: int) -> Entry:
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        return Entry(version=0, payload=b"")
    body = _renderer.render(ItemSerializer(item).data)
    return Entry(version=item.version, payload=b"%r\n%s" % (item.updated_at.timestamp(), body))


def _unpack(entry: Entry) -> CachedItem | None:
    if not entry.version:
        return None
    timestamp, _, body = entry.payload.partition(b"\n")
    return CachedItem(entry.version, datetime.fromtimestamp(float(timestamp), UTC), body)


def read_item(item_id: int) -> tuple[CachedItem | None, str]:
    """The item as stored (None when there is no such item) and the cache status."""
    cached, status, _ = read_item_and_count(item_id, ())
    return cached, status


def read_item_and_count(
    item_id: int, counters: tuple[Counter, ...]
) -> tuple[CachedItem | None, str, tuple[int, ...] | None]:
    """`read_item`, with `counters` counted in its first round trip: also their counts.

    The counts are None without counters, or when the cache could not be reached,
    which counted nothing. Raises LimitExceeded, before loading anything, when a
    count is past its limit.
    """
    read = item_cache.get_or_fill(item_id, lambda: _load(item_id), counters)
    return _unpack(read.entry), read.status, read.counts


def item_reads_can_count(alias: str) -> bool:
    """Whether counters kept by the Django cache `alias` can ride on item reads."""
    return item_cache.counts_in(alias)


def item_changed(item_id: int, version: int) -> None:
    """Call after `version` of the item committed (a create or an update)."""
    item_cache.invalidate(item_id, version)


def items_changed(versions: list[tuple[int, int]]) -> None:
    """Call after a bulk write committed: (item id, committed version) pairs."""
    item_cache.invalidate_many(versions)


def item_deleted(item_id: int) -> None:
    """Call after the item's deletion committed.

    Also after a write whose version may be no newer than the cached one (a
    fixture load): no fill lands until the tombstone expires.
    """
    item_cache.invalidate(item_id, DELETED)


def all_items_changed() -> int:
    """Make every cached item a miss, for every process; return the new generation.

    Call after rows changed that no invalidation names (a data migration, SQL,
    a bulk insert whose ids are unknown). Raises CacheUnavailable when the
    cache cannot be reached: the entries may then be served until CACHE_TTL ends.
    """
    return item_cache.invalidate_all()


def cache_is_shared() -> bool:
    """Whether the item cache is Redis, shared by every process, not this process's memory."""
    return store_is_shared()
