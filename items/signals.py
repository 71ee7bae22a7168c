"""Cache invalidation for every write path, run only once the write has committed.

A rolled-back transaction runs no on_commit callback, so it leaves the cache as
it was. Receivers are connected in ItemsConfig.ready().
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from items import cache
from items.models import Item, items_bulk_changed


@receiver(post_save, sender=Item, dispatch_uid="items.invalidate_saved_item")
def invalidate_saved_item(sender, instance: Item, using: str, raw: bool, **kwargs) -> None:
    item_id, version = instance.pk, instance.version
    if raw:  # a fixture load writes the fixture's version, maybe below the cached one
        transaction.on_commit(lambda: cache.item_deleted(item_id), using=using)
        return
    transaction.on_commit(lambda: cache.item_changed(item_id, version), using=using)


@receiver(post_delete, sender=Item, dispatch_uid="items.invalidate_deleted_item")
def invalidate_deleted_item(sender, instance: Item, using: str, **kwargs) -> None:
    item_id = instance.pk
    transaction.on_commit(lambda: cache.item_deleted(item_id), using=using)


@receiver(items_bulk_changed, sender=Item, dispatch_uid="items.invalidate_bulk_changed")
def invalidate_bulk_changed(sender, versions: list[tuple[int, int]], **kwargs) -> None:
    cache.items_changed(versions)
