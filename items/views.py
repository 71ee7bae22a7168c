import json
from http import HTTPStatus

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse

from items import conditional
from items.cache import read_item
from items.filters import ItemFilter, ItemSearchFilter, StableOrderingFilter
from items.models import Item
from items.serializers import ItemReplaceSerializer, ItemSerializer

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
# Actions whose successful response is one item's representation, so it carries validators.
SINGLE_ITEM_ACTIONS = frozenset({"create", "retrieve", "update", "partial_update"})


def _header(name: str, description: str, *, response=False) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.HEADER, description=description, response=response
    )


VALIDATOR_HEADERS = [
    _header("ETag", "Strong validator of this version of the item.", response=[200, 201, 304]),
    _header("Last-Modified", "When the item last changed (`updated_at`).", response=[200, 201]),
]
IF_MATCH = _header(
    "If-Match",
    "Write only if the item's current ETag is listed (or `*`); 412 otherwise. "
    "Required (428 without it) when API_REQUIRE_IF_MATCH is on.",
)
X_CACHE = _header(
    "X-Cache",
    "HIT: served from the cache; MISS: read from the database and cached; "
    "BYPASS: the cache is off or unavailable.",
    response=[200, 304, 404],
)


@extend_schema_view(
    create=extend_schema(parameters=VALIDATOR_HEADERS),
    retrieve=extend_schema(
        parameters=[
            *VALIDATOR_HEADERS,
            X_CACHE,
            _header("If-None-Match", "304 when one of these ETags (or `*`) is current."),
            _header("If-Modified-Since", "304 when unchanged since; ignored with If-None-Match."),
        ]
    ),
    update=extend_schema(parameters=[*VALIDATOR_HEADERS, IF_MATCH]),
    partial_update=extend_schema(parameters=[*VALIDATOR_HEADERS, IF_MATCH]),
    destroy=extend_schema(parameters=[IF_MATCH]),
)
class ItemViewSet(viewsets.ModelViewSet):
    """Create, list, retrieve, replace, patch and delete items."""

    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    lookup_value_regex = r"\d+"
    filter_backends = [DjangoFilterBackend, ItemSearchFilter, StableOrderingFilter]
    filterset_class = ItemFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "price", "quantity", "created_at", "updated_at", "id"]
    ordering = ["id"]
    cache_status: str | None = None

    def get_serializer_class(self):
        if self.action == "update":
            return ItemReplaceSerializer
        return super().get_serializer_class()

    def get_object(self) -> Item:
        """The item, with `If-Match` judged before the body is (RFC 9110, 13.2.1)."""
        item = super().get_object()
        if self.request.method in WRITE_METHODS:
            conditional.check_if_match(self.request, item)
        return item

    def retrieve(self, request, *args, **kwargs):
        """Serve the item through the read cache: its stored JSON bytes on a hit.

        The validators come from the cached version and timestamp, so a hit, and
        a 304 on a hit, run no SQL. View-level permissions have run in `initial()`;
        object-level permissions would need the row, so this path does not check them.
        """
        item_id = int(kwargs[self.lookup_field])
        cached, self.cache_status = read_item(item_id)
        if cached is None:
            raise NotFound()
        headers = conditional.validator_headers(item_id, cached.version, cached.updated_at)
        if conditional.is_not_modified(request, etag=headers["ETag"], updated_at=cached.updated_at):
            return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
        if request.accepted_renderer.format != "json":  # the browsable API
            return Response(json.loads(cached.body), headers=headers)
        response = HttpResponse(cached.body, content_type="application/json", headers=headers)
        patch_vary_headers(response, ["Accept"])
        return response

    def perform_update(self, serializer) -> None:
        with conditional.write_guard(self.request, serializer.instance):
            serializer.save()

    def perform_destroy(self, instance) -> None:
        with conditional.write_guard(self.request, instance):
            instance.delete()

    def get_success_headers(self, data) -> dict:
        return {"Location": reverse("item-detail", args=[data["id"]], request=self.request)}

    def finalize_response(self, request, response, *args, **kwargs):
        """Add `ETag` and `Last-Modified` to item responses built from data, and `X-Cache`."""
        data = getattr(response, "data", None)  # absent on a response of stored bytes
        if self.action in SINGLE_ITEM_ACTIONS and response.status_code in (200, 201) and data:
            updated_at = parse_datetime(data["updated_at"])
            for name, value in conditional.validator_headers(
                data["id"], data["version"], updated_at
            ).items():
                response.headers.setdefault(name, value)
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.cache_status:
            response["X-Cache"] = self.cache_status
        return response
