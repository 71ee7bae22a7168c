import json
from types import MappingProxyType

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from backend.cache import LimitExceeded
from backend.errors import database_unavailable, problem_response
from backend.throttling import counted_by_read, read_counters
from items import conditional
from items.cache import CachedItem, item_reads_can_count, read_item, read_item_and_count
from items.filters import ItemFilter, ItemSearchFilter, StableOrderingFilter
from items.models import Item
from items.serializers import ItemReplaceSerializer, ItemSerializer

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
# Accept headers for which DRF would pick the JSON renderer.
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})
# Authentication classes that can only identify a client by the Authorization
# header or the session cookie.
CREDENTIAL_AUTHENTICATION = (TokenAuthentication, SessionAuthentication)
# The headers DRF adds to a response, by view class and route (`ItemViewSet._drf_headers`).
_SHORTCUT_HEADERS: dict[tuple, MappingProxyType] = {}
# Actions whose successful response is one item's representation, so it carries validators.
SINGLE_ITEM_ACTIONS = frozenset({"create", "retrieve", "update", "partial_update"})


def _header(name: str, description: str, *, response=False) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.HEADER, description=description, response=response
    )


ITEM_HEADERS = [
    _header("ETag", "Strong validator of this version of the item.", response=[200, 201, 304]),
    _header("Last-Modified", "When the item last changed (`updated_at`).", response=[200, 201]),
    _header(
        "Cache-Control",
        "`no-cache`: a client or proxy that keeps the item revalidates it before each reuse.",
        response=[200, 201, 304],
    ),
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
    create=extend_schema(parameters=ITEM_HEADERS),
    retrieve=extend_schema(
        parameters=[
            *ITEM_HEADERS,
            X_CACHE,
            _header("If-None-Match", "304 when one of these ETags (or `*`) is current."),
            _header("If-Modified-Since", "304 when unchanged since; ignored with If-None-Match."),
        ]
    ),
    update=extend_schema(parameters=[*ITEM_HEADERS, IF_MATCH]),
    partial_update=extend_schema(parameters=[*ITEM_HEADERS, IF_MATCH]),
    destroy=extend_schema(parameters=[IF_MATCH]),
)
class ItemViewSet(viewsets.ModelViewSet):
    """Create, list, retrieve, replace, patch and delete items."""

    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    lookup_value_regex = "[0-9]+"  # not \d, which also matches other scripts' digits
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

    def filter_queryset(self, queryset):
        """Filters, search and ordering shape the list; one item is found by its id alone.

        DRF applies them to an item's route too, where every write would build a
        FilterSet and its form, and a parameter could make a write answer 404 for an
        item that a read, served from the cache, finds. The OpenAPI description lists
        them on the list only.
        """
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self) -> Item:
        """The item, with `If-Match` judged before the body is (RFC 9110, 13.2.1)."""
        item = super().get_object()
        if self.request.method in WRITE_METHODS:
            conditional.check_if_match(self.request, item)
        return item

    def dispatch(self, request, *args, **kwargs):
        """Answer anonymous JSON reads of one item without DRF's request cycle.

        They are most of the traffic, and on a cache hit DRF's dispatch costs more
        CPU than the hit itself (docs/benchmarks.md). The shortcut runs the same
        permission and throttle checks; anything else, a format suffix included,
        or any check that says no, goes through DRF as usual.
        """
        if (
            request.method == "GET"
            and self.lookup_field in kwargs
            and "format" not in kwargs
            and self._is_anonymous_json(request)
        ):
            response = self._anonymous_read(request, *args, **kwargs)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _is_anonymous_json(self, request) -> bool:
        """No credentials DRF could authenticate, and DRF would answer in JSON.

        Cookies and the query string are parsed only when the request has them:
        on a hit, parsing them costs as much as the cache read's own Python.
        """
        meta = request.META
        return (
            hasattr(request, "user")  # SessionAuthentication asks who it is
            and "HTTP_AUTHORIZATION" not in meta
            and meta.get("HTTP_ACCEPT", "") in JSON_ACCEPTS
            and (not meta.get("HTTP_COOKIE") or settings.SESSION_COOKIE_NAME not in request.COOKIES)
            and (not meta.get("QUERY_STRING") or "format" not in request.GET)
            and all(
                issubclass(cls, CREDENTIAL_AUTHENTICATION) for cls in self.authentication_classes
            )
        )

    def _anonymous_read(self, request, *args, **kwargs) -> HttpResponse | None:
        """The cached item for an anonymous client, or None to let DRF answer.

        Permissions and throttles see the view and request DRF would give them
        (`view.action`, `request.user`, `request.auth`, `request.query_params`).
        The request has no authenticators: there are no credentials, so DRF makes
        the client anonymous without asking them (asking them looked the absent
        session up, the costliest step of the shortcut's Python). It also skips
        DRF's content negotiation and parsers, which a JSON read does not need.
        """
        self.args, self.kwargs, self.action = args, kwargs, "retrieve"
        self.request = Request(request, authenticators=())
        item_id = int(kwargs[self.lookup_field])
        try:
            if not all(p.has_permission(self.request, self) for p in self.get_permissions()):
                return None
            read = self._throttled_read(item_id)
            if read is None:
                return None  # DRF checks again and answers 429 (a denied request counts twice)
            cached, cache_status = read
        except OperationalError as error:  # PostgreSQL away: a miss, or a check that asked it
            return _with_headers(database_unavailable(error), self._drf_headers())
        headers = {**self._drf_headers(), "X-Cache": cache_status}
        if cached is None:
            not_found = problem_response(404, code="not_found", detail=str(NotFound.default_detail))
            return _with_headers(not_found, headers)
        return self._cached_response(request, item_id, cached, headers=headers)

    def _throttled_read(self, item_id: int) -> tuple[CachedItem | None, str] | None:
        """`read_item` after the throttles' checks; None when a throttle refuses.

        The throttles' counters travel in the cache read's own round trip when they
        can (`read_counters`); a read that could not reach the cache counted nothing,
        and the throttles fail open. Otherwise each throttle counts on its own first.
        """
        throttles = self.get_throttles()
        counters = read_counters(throttles, self.request, self, counts_in=item_reads_can_count)
        if counters is None:
            if not all(t.allow_request(self.request, self) for t in throttles):
                return None
            counters = ()
        try:
            cached, cache_status, counts = read_item_and_count(item_id, counters)
        except LimitExceeded:
            return None
        if counters:
            counted_by_read(counts is not None)
        return cached, cache_status

    def _drf_headers(self) -> dict:
        """The headers DRF's path would add to the shortcut's response.

        DRF's `finalize_response` adds Allow and Vary. Its session authenticator
        looks the session up, which makes SessionMiddleware add `Vary: Cookie`;
        the shortcut, which knows there is no session, adds that itself. The Vary
        it starts from is empty or `Accept`, so joining the strings is exact; calling
        `finalize_response` and `patch_vary_headers` instead cost a hit about 10 µs
        more. The tests that compare the shortcut with DRF's path catch any drift.
        Computing them (Allow asks the view for each HTTP method) cost a hit more than
        its URL resolution, so each route's are computed once.
        """
        route = (type(self), frozenset(self.action_map))
        headers = _SHORTCUT_HEADERS.get(route)
        if headers is None:  # they depend on the class and the route's actions alone
            headers = self.default_response_headers
            if any(issubclass(cls, SessionAuthentication) for cls in self.authentication_classes):
                vary = headers.get("Vary")
                headers["Vary"] = f"{vary}, Cookie" if vary else "Cookie"
            headers = _SHORTCUT_HEADERS[route] = MappingProxyType(headers)
        return headers

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
        as_json = request.accepted_renderer.format == "json"  # else the browsable API
        return self._cached_response(request, item_id, cached, as_json=as_json)

    @staticmethod
    def _cached_response(
        request, item_id: int, cached: CachedItem, *, as_json=True, headers: dict | None = None
    ):
        """The stored JSON bytes with their validators, or 304 when the client has them."""
        headers = {
            **conditional.item_headers(item_id, cached.version, cached.updated_at),
            **(headers or {}),
        }
        if conditional.is_not_modified(request, etag=headers["ETag"], updated_at=cached.updated_at):
            return HttpResponseNotModified(headers=headers)
        if not as_json:
            return Response(json.loads(cached.body), headers=headers)
        return HttpResponse(cached.body, content_type="application/json", headers=headers)

    def perform_update(self, serializer) -> None:
        with conditional.write_guard(self.request, serializer.instance):
            try:
                serializer.save()
            except Item.DoesNotExist:  # deleted since get_object() read it
                raise NotFound() from None

    def perform_destroy(self, instance) -> None:
        with conditional.write_guard(self.request, instance):
            instance.delete()

    def get_success_headers(self, data) -> dict:
        return {"Location": reverse("item-detail", args=[data["id"]], request=self.request)}

    def finalize_response(self, request, response, *args, **kwargs):
        """Add `item_headers` to item responses built from data, and `X-Cache`."""
        data = getattr(response, "data", None)  # absent on a response of stored bytes
        if self.action in SINGLE_ITEM_ACTIONS and response.status_code in (200, 201) and data:
            updated_at = parse_datetime(data["updated_at"])
            for name, value in conditional.item_headers(
                data["id"], data["version"], updated_at
            ).items():
                response.headers.setdefault(name, value)
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.cache_status:
            response["X-Cache"] = self.cache_status
        return response


def _with_headers(response: HttpResponse, headers: dict) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response
