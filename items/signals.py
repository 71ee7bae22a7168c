"""Cache invalidation for every write path, run only once the write has committed.

A rolled-back transaction runs no on_commit callback, so it leaves the cache as
it was. Receivers are connected in ItemsConfig.ready().
"""

import contextlib
import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from backend.cache import CacheUnavailable
from items import cache
from items.models import Item, items_bulk_changed, items_changed_unnamed

logger = logging.getLogger(__name__)


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


@receiver(items_changed_unnamed, sender=Item, dispatch_uid="items.invalidate_unnamed")
def invalidate_unnamed(sender, **kwargs) -> None:
    # A failure is on record: the process advances the generation once the cache answers.
    with contextlib.suppress(CacheUnavailable):
        cache.all_items_changed()


def invalidate_after_migrate(sender, using: str, **kwargs) -> None:
    """After `migrate` or `flush` (post_migrate), make every cached item a miss.

    Data migrations write through historical models, which send no signal the
    receivers above hear; flush deletes every row. Connected in ItemsConfig.ready().
    """
    transaction.on_commit(_advance_after_migrate, using=using)


def _advance_after_migrate() -> None:
    if not cache.cache_is_shared():
        # The servers' caches live in their own processes, out of this one's reach.
        if not settings.DEBUG:
            logger.warning(
                "No Redis is configured for this process, so the servers' cached items "
                "were not invalidated after migrate or flush. Run `manage.py "
                "invalidate_item_cache` where the service's Redis settings are."
            )
        return
    try:
        generation = cache.all_items_changed()
    except CacheUnavailable as error:
        logger.warning(
            "Redis could not be reached (%s), so cached items were not invalidated after "
            "migrate or flush: they may be served as they were for up to CACHE_TTL "
            "seconds. Run `manage.py invalidate_item_cache` once Redis answers.",
            error,
        )
        return
    logger.info("Every cached item is now a miss (item cache generation %s).", generation)
