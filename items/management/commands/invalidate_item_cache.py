"""`manage.py invalidate_item_cache`: every cached item becomes a miss, in every process."""

from django.core.management.base import BaseCommand, CommandError

from backend.cache import CacheUnavailable
from items import cache


class Command(BaseCommand):
    help = (
        "Make every cached item a miss for every server, after rows changed without the "
        "application (SQL, a restore). Exits non-zero when Redis cannot be reached."
    )

    def handle(self, *args, **options) -> None:
        if not cache.cache_is_shared():
            raise CommandError(
                "No Redis is configured for this process (REDIS_URL or REDIS_HOST): the "
                "servers' caches are in their own memory, out of this command's reach. "
                "Run it with the service's Redis settings, or restart the servers."
            )
        try:
            generation = cache.all_items_changed()
        except CacheUnavailable as error:
            raise CommandError(
                f"Redis could not be reached ({error}): NO cached item was invalidated, "
                "and each may be served as it was for up to CACHE_TTL seconds. Run this "
                "command again once Redis answers."
            ) from error
        self.stdout.write(f"Every cached item is now a miss (item cache generation {generation}).")
