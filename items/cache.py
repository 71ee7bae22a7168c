"""What the items app caches, and the only code that touches that cache.

One entry per item id: the item's rendered JSON bytes tagged with its version,
so a hit is served without the ORM, the serializer or the renderer. An absent id
is cached briefly as version 0 with an empty body.
"""

from rest_framework.renderers import JSONRenderer

from backend.cache import DELETED, Entry, Read, ReadThroughCache
from items.models import Item
from items.serializers import ItemSerializer

# Bump when the stored representation changes, so releases never misread each
# other's entries during a rolling deploy.
SCHEMA_VERSION = 1

_renderer = JSONRenderer()
item_cache = ReadThroughCache(namespace=f"item:s{SCHEMA_VERSION}")


def _load(item_id: int) -> Entry:
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        return Entry(version=0, payload=b"")
    return Entry(version=item.version, payload=_renderer.render(ItemSerializer(item).data))


def read_item(item_id: int) -> Read:
    """The item's rendered JSON and version; `entry.version == 0` when there is none."""
    return item_cache.get_or_fill(item_id, lambda: _load(item_id))


def item_changed(item_id: int, version: int) -> None:
    """Call after `version` of the item committed (a create or an update)."""
    item_cache.invalidate(item_id, version)


def item_deleted(item_id: int) -> None:
    """Call after the item's deletion committed."""
    item_cache.invalidate(item_id, DELETED)
