"""Peer (b): drf-extensions' `cache_response` on retrieve, invalidated as its docs show.

The documentation's invalidation is a key bit holding an "API updated at" timestamp
that post_save and post_delete receivers reset: every write changes every key, so
any write makes every cached item a miss. The receivers run inside `Item.save()`'s
transaction, before it commits, as the documented ones do.
"""

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.encoding import force_str
from rest_framework import mixins, viewsets
from rest_framework_extensions.cache.decorators import cache_response
from rest_framework_extensions.key_constructor.bits import KeyBitBase, RetrieveSqlQueryKeyBit
from rest_framework_extensions.key_constructor.constructors import DefaultKeyConstructor

from items.models import Item
from items.serializers import ItemSerializer

TIMEOUT = 300  # seconds, the project's CACHE_TTL
UPDATED_AT_KEY = "api_updated_at_timestamp"


class UpdatedAtKeyBit(KeyBitBase):
    def get_data(self, **kwargs):
        value = cache.get(UPDATED_AT_KEY, None)
        if not value:
            value = timezone.now()
            cache.set(UPDATED_AT_KEY, value=value)
        return force_str(value)


class ItemKeyConstructor(DefaultKeyConstructor):
    retrieve_sql = RetrieveSqlQueryKeyBit()
    updated_at = UpdatedAtKeyBit()


class ExtensionsItemViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer

    @cache_response(timeout=TIMEOUT, key_func=ItemKeyConstructor())
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)


@receiver([post_save, post_delete], sender=Item, dispatch_uid="bench.drf_extensions.updated_at")
def change_api_updated_at(sender, **kwargs) -> None:
    cache.set(UPDATED_AT_KEY, timezone.now())
