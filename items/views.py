from rest_framework import viewsets
from rest_framework.reverse import reverse

from items.models import Item
from items.serializers import ItemReplaceSerializer, ItemSerializer


class ItemViewSet(viewsets.ModelViewSet):
    """Create, list, retrieve, replace, patch and delete items."""

    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    lookup_value_regex = r"\d+"

    def get_serializer_class(self):
        if self.action == "update":
            return ItemReplaceSerializer
        return super().get_serializer_class()

    def get_success_headers(self, data) -> dict:
        return {"Location": reverse("item-detail", args=[data["id"]], request=self.request)}
