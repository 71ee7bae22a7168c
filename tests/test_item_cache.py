"""The item read cache through the API: headers, zero-SQL hits, invalidation on commit."""

import threading
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.core import serializers
from django.core.cache import caches
from django.db import connection, transaction
from django.utils.http import http_date

from items.cache import SCHEMA_VERSION, item_cache
from items.cache import _load as load_item
from items.models import Item
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def detail(item_id) -> str:
    return f"/api/items/{item_id}/"


def read(client, item_id):
    response = client.get(detail(item_id))
    body = response.json()
    return response.status_code, response["X-Cache"], body.get("version")


def test_a_first_read_misses_and_the_next_hits_without_sql(
    api_client, item, django_assert_num_queries
):
    first = api_client.get(detail(item.pk))
    with django_assert_num_queries(0):
        second = api_client.get(detail(item.pk))

    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert first.content == second.content
    assert second["Content-Type"] == "application/json"
    assert second.json()["name"] == item.name


def test_every_schema_of_the_item_entry_shares_one_key(api_client, item):
    """So two releases side by side invalidate each other's entries (docs/caching.md)."""
    from django_redis import get_redis_connection

    api_client.get(detail(item.pk))

    key = caches["default"].make_key(f"item:entry:{item.pk}")
    assert get_redis_connection().hget(key, "s") == str(SCHEMA_VERSION).encode()


def test_an_absent_item_is_cached_briefly_and_its_creation_replaces_that(
    api_client, django_assert_num_queries, django_capture_on_commit_callbacks
):
    missing_id = 990001
    assert read(api_client, missing_id) == (HTTPStatus.NOT_FOUND, "MISS", None)
    with django_assert_num_queries(0):
        assert read(api_client, missing_id) == (HTTPStatus.NOT_FOUND, "HIT", None)

    with django_capture_on_commit_callbacks(execute=True):
        ItemFactory(id=missing_id)

    assert read(api_client, missing_id) == (HTTPStatus.OK, "MISS", 1)


def test_the_browsable_api_gets_the_cached_item_as_html(api_client, item):
    api_client.get(detail(item.pk))

    response = api_client.get(detail(item.pk), HTTP_ACCEPT="text/html")

    assert response.status_code == HTTPStatus.OK
    assert response["X-Cache"] == "HIT"
    assert response["Content-Type"].startswith("text/html")
    assert item.name in response.content.decode()


def api_write(method: str, data=None):
    def write(item, auth_client, admin_client):
        response = getattr(auth_client, method)(detail(item.pk), data, format="json")
        assert response.status_code < 300

    return write


def orm_save(item, auth_client, admin_client):
    item.price = Decimal("77.00")
    item.save()


def orm_save_of_a_new_instance(item, auth_client, admin_client):
    """Django updates the row that has this pk."""
    Item(pk=item.pk, quantity=99).save(update_fields=["quantity"])


def upsert(item, auth_client, admin_client):
    Item.objects.bulk_create(
        [Item(pk=item.pk, name="upserted", price=Decimal("2.00"))],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["name", "price"],
    )


def queryset_update(item, auth_client, admin_client):
    Item.objects.filter(pk=item.pk).update(quantity=123)


def bulk_update(item, auth_client, admin_client):
    item.quantity = 321
    Item.objects.bulk_update([item], ["quantity"])


def admin_change(item, auth_client, admin_client):
    response = admin_client.post(
        f"/admin/items/item/{item.pk}/change/",
        {"name": item.name, "description": "", "price": "55.00", "quantity": 1, "_save": "Save"},
    )
    assert response.status_code == HTTPStatus.FOUND


def orm_delete(item, auth_client, admin_client):
    item.delete()


def queryset_delete(item, auth_client, admin_client):
    Item.objects.filter(pk=item.pk).delete()


def admin_delete(item, auth_client, admin_client):
    response = admin_client.post(f"/admin/items/item/{item.pk}/delete/", {"post": "yes"})
    assert response.status_code == HTTPStatus.FOUND


UPDATES = {
    "api put": api_write("put", {"name": "New", "description": "", "price": "1.00", "quantity": 1}),
    "api patch": api_write("patch", {"quantity": 50}),
    "orm save": orm_save,
    "orm save of a new instance with its pk": orm_save_of_a_new_instance,
    "upsert": upsert,
    "queryset update": queryset_update,
    "bulk update": bulk_update,
    "admin change": admin_change,
}
DELETES = {
    "api delete": api_write("delete"),
    "orm delete": orm_delete,
    "queryset delete": queryset_delete,
    "admin delete": admin_delete,
}


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="admin", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("write", UPDATES.values(), ids=UPDATES.keys())
def test_every_update_path_invalidates_only_after_commit(
    write, api_client, auth_client, admin_client, item, django_capture_on_commit_callbacks
):
    assert read(api_client, item.pk)[:2] == (HTTPStatus.OK, "MISS")
    loaded_before_the_write = load_item(item.pk)

    with django_capture_on_commit_callbacks() as callbacks:
        write(item, auth_client, admin_client)
        # Not committed yet: the cache still holds the committed version.
        assert read(api_client, item.pk) == (HTTPStatus.OK, "HIT", 1)
    for callback in callbacks:
        callback()
    # A reader that loaded the row before the commit fills only now: the invalidation
    # carried the committed version, so that fill is refused.
    item_cache.get_or_fill(item.pk, lambda: loaded_before_the_write)

    assert read(api_client, item.pk) == (HTTPStatus.OK, "MISS", 2)
    assert read(api_client, item.pk) == (HTTPStatus.OK, "HIT", 2)


@pytest.mark.parametrize("write", DELETES.values(), ids=DELETES.keys())
def test_every_delete_path_invalidates_only_after_commit(
    write, api_client, auth_client, admin_client, item, django_capture_on_commit_callbacks
):
    item_id = item.pk
    read(api_client, item_id)
    loaded_before_the_delete = load_item(item_id)

    with django_capture_on_commit_callbacks() as callbacks:
        write(item, auth_client, admin_client)
        assert read(api_client, item_id) == (HTTPStatus.OK, "HIT", 1)
    for callback in callbacks:
        callback()
    item_cache.get_or_fill(item_id, lambda: loaded_before_the_delete)

    assert read(api_client, item_id) == (HTTPStatus.NOT_FOUND, "MISS", None)


def test_bulk_create_replaces_cached_absences(api_client, django_capture_on_commit_callbacks):
    read(api_client, 990002)

    with django_capture_on_commit_callbacks(execute=True):
        Item.objects.bulk_create([Item(id=990002, name="bulk", price=1)])

    assert read(api_client, 990002) == (HTTPStatus.OK, "MISS", 1)


def test_a_fixture_load_replaces_the_cached_item_whatever_version_it_carries(
    api_client, item, django_capture_on_commit_callbacks
):
    item.save()
    item.save()
    assert read(api_client, item.pk)[1:] == ("MISS", 3)
    from_fixture = Item(pk=item.pk, name="From a fixture", price=1, created_at=item.created_at)
    from_fixture.updated_at = item.updated_at
    fixture = serializers.serialize("json", [from_fixture])

    with django_capture_on_commit_callbacks(execute=True):
        for loaded in serializers.deserialize("json", fixture):
            loaded.save()  # what loaddata does: a raw save of the fixture's version 1

    response = api_client.get(detail(item.pk))
    assert (response["X-Cache"], response.json()["name"]) == ("MISS", "From a fixture")


def test_a_rolled_back_write_leaves_the_cache_alone(
    api_client, item, django_capture_on_commit_callbacks
):
    read(api_client, item.pk)

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        item.save()
        Item.objects.filter(pk=item.pk).update(quantity=5)
        transaction.set_rollback(True)

    assert callbacks == []
    assert read(api_client, item.pk) == (HTTPStatus.OK, "HIT", 1)


@pytest.mark.django_db(transaction=True)
def test_a_reader_during_an_open_transaction_sees_the_committed_version(api_client):
    item = ItemFactory()
    read(api_client, item.pk)
    saved, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                Item.objects.get(pk=item.pk).save()
                saved.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert saved.wait(10)
    during = read(api_client, item.pk)
    release.set()
    thread.join(10)

    assert during == (HTTPStatus.OK, "HIT", 1)
    assert read(api_client, item.pk) == (HTTPStatus.OK, "MISS", 2)


def test_a_cache_hit_answers_if_none_match_with_304_and_no_sql(
    api_client, item, django_assert_num_queries
):
    etag = api_client.get(detail(item.pk))["ETag"]

    with django_assert_num_queries(0):
        response = api_client.get(detail(item.pk), HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert (response["X-Cache"], response["ETag"]) == ("HIT", f'"{item.pk}-1"')
    assert response.content == b""


def test_a_cache_hit_carries_the_same_validators_as_a_miss(api_client, item):
    miss = api_client.get(detail(item.pk))
    hit = api_client.get(detail(item.pk))

    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert (hit["ETag"], hit["Last-Modified"]) == (miss["ETag"], miss["Last-Modified"])
    assert hit["Last-Modified"] == http_date(item.updated_at.timestamp())


def test_every_item_response_asks_caches_to_revalidate(api_client, auth_client, item):
    miss = api_client.get(detail(item.pk))
    hit = api_client.get(detail(item.pk))
    not_modified = api_client.get(detail(item.pk), HTTP_IF_NONE_MATCH=hit["ETag"])
    through_drf = auth_client.get(detail(item.pk))
    patched = auth_client.patch(detail(item.pk), {"quantity": 9}, format="json")

    responses = [miss, hit, not_modified, through_drf, patched]
    assert [r.status_code for r in responses] == [200, 200, 304, 200, 200]
    assert {r["Cache-Control"] for r in responses} == {"no-cache"}


class TestAnonymousShortcut:
    """Anonymous JSON reads skip DRF's request cycle, with the same answers and checks."""

    def test_it_answers_exactly_as_the_drf_path(self, api_client, item, drf_cycles):
        api_client.get(detail(item.pk))  # fill the cache

        shortcut = api_client.get(detail(item.pk))
        # An Accept header the shortcut does not take: DRF negotiates JSON itself.
        through_drf = api_client.get(detail(item.pk), HTTP_ACCEPT="application/json; q=1.0")

        assert len(drf_cycles) == 1  # only the second read
        assert shortcut.content == through_drf.content
        for header in ("Content-Type", "ETag", "Last-Modified", "X-Cache", "Vary", "Allow"):
            assert shortcut[header] == through_drf[header], header

    def test_an_absent_item_is_the_same_404_problem(self, api_client, auth_client, drf_cycles):
        anonymous = api_client.get(detail(990003))
        authenticated = auth_client.get(detail(990003))

        assert len(drf_cycles) == 1
        assert anonymous.status_code == authenticated.status_code == HTTPStatus.NOT_FOUND
        assert anonymous["Content-Type"] == authenticated["Content-Type"]
        assert anonymous.json() == authenticated.json() | {"request_id": anonymous["X-Request-ID"]}

    def test_it_answers_304_without_sql(self, api_client, item, django_assert_num_queries):
        etag = api_client.get(detail(item.pk))["ETag"]

        with django_assert_num_queries(0):
            response = api_client.get(detail(item.pk), HTTP_IF_NONE_MATCH=etag)

        assert (response.status_code, response["X-Cache"]) == (HTTPStatus.NOT_MODIFIED, "HIT")

    def test_it_applies_the_anonymous_throttle(self, api_client, item, settings):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": None},
        }

        statuses = [api_client.get(detail(item.pk)).status_code for _ in range(4)]

        assert statuses == [HTTPStatus.OK] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]

    def test_permissions_see_the_view_and_request_drf_gives_them(
        self, api_client, item, monkeypatch, drf_cycles
    ):
        from rest_framework.permissions import BasePermission

        from items.views import ItemViewSet

        class OnlyRetrieveWithoutPreview(BasePermission):
            def has_permission(self, request, view):
                return (
                    view.action == "retrieve"
                    and request.auth is None
                    and "preview" not in request.query_params
                )

        monkeypatch.setattr(ItemViewSet, "permission_classes", [OnlyRetrieveWithoutPreview])

        allowed = api_client.get(detail(item.pk))
        refused = api_client.get(detail(item.pk), {"preview": "1"})

        assert allowed.status_code == HTTPStatus.OK
        assert refused.status_code == HTTPStatus.UNAUTHORIZED
        assert len(drf_cycles) == 1  # only the refused read, which DRF answers

    @pytest.mark.parametrize(
        ("suffix", "status"),
        [(".json", HTTPStatus.OK), (".5/", HTTPStatus.NOT_FOUND), (".xyz", HTTPStatus.NOT_FOUND)],
    )
    def test_a_format_suffix_goes_through_drf(self, api_client, item, drf_cycles, suffix, status):
        response = api_client.get(f"/api/items/{item.pk}{suffix}")

        assert (response.status_code, len(drf_cycles)) == (status, 1)

    def test_closed_anonymous_reads_stay_closed(self, api_client, item, monkeypatch):
        from rest_framework.permissions import IsAuthenticated

        from items.views import ItemViewSet

        # What API_PERMISSION_CLASS does: DRF reads it once, into the class.
        monkeypatch.setattr(ItemViewSet, "permission_classes", [IsAuthenticated])

        response = api_client.get(detail(item.pk))

        assert response.status_code == HTTPStatus.UNAUTHORIZED

    @pytest.mark.parametrize(
        "headers",
        [
            {"HTTP_AUTHORIZATION": "Token not-a-real-token"},
            {"HTTP_ACCEPT": "text/html"},
        ],
    )
    def test_credentials_or_other_formats_go_through_drf(
        self, api_client, item, drf_cycles, headers
    ):
        api_client.get(detail(item.pk), **headers)

        assert len(drf_cycles) == 1
