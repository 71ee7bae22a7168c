"""Peer (a): cache-aside with django-redis, as it is commonly written.

retrieve() reads the cache, else serializes the row and stores it; a receiver
deletes the entry on save and delete. The receiver runs where Django sends the
signal: inside `Item.save()`'s transaction, before it commits.
"""

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework import mixins, viewsets
from rest_framework.response import Response

from items.models import Item
from items.serializers import ItemSerializer

TIMEOUT = 300  # seconds, the project's CACHE_TTL


def item_key(pk) -> str:
    return f"item:{pk}"


class CacheAsideItemViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer

    def retrieve(self, request, *args, **kwargs):
        key = item_key(kwargs["pk"])
        data = cache.get(key)
        if data is None:
            data = self.get_serializer(self.get_object()).data
            cache.set(key, data, TIMEOUT)
        return Response(data)


@receiver([post_save, post_delete], sender=Item, dispatch_uid="bench.cache_aside.forget")
def forget_cached_item(sender, instance: Item, **kwargs) -> None:
    cache.delete(item_key(instance.pk))
