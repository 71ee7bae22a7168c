import json

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse

from items.cache import read_item
from items.models import Item
from items.serializers import ItemReplaceSerializer, ItemSerializer


class ItemViewSet(viewsets.ModelViewSet):
    """Create, list, retrieve, replace, patch and delete items."""

    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    lookup_value_regex = r"\d+"
    cache_status: str | None = None

    def get_serializer_class(self):
        if self.action == "update":
            return ItemReplaceSerializer
        return super().get_serializer_class()

    def retrieve(self, request, *args, **kwargs):
        """Serve the item through the read cache: stored JSON bytes on a hit.

        View-level permissions have run in `initial()`; object-level permissions
        would need the row, so this path does not check them.
        """
        read = read_item(int(kwargs[self.lookup_field]))
        self.cache_status = read.status
        if not read.entry.version:
            raise NotFound()
        if request.accepted_renderer.format != "json":  # the browsable API
            return Response(json.loads(read.entry.payload))
        response = HttpResponse(read.entry.payload, content_type="application/json")
        patch_vary_headers(response, ["Accept"])
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.cache_status:
            response["X-Cache"] = self.cache_status
        return response

    def get_success_headers(self, data) -> dict:
        return {"Location": reverse("item-detail", args=[data["id"]], request=self.request)}
