"""ETag, Last-Modified, 304, If-Match with 412 and 428: HTTP's conditional requests."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import RequestFactory, override_settings
from django.utils.http import http_date

from items.conditional import (
    etag_for,
    if_match_passes,
    if_none_match_passes,
    is_not_modified,
    last_modified_for,
)
from items.models import Item

pytestmark = pytest.mark.django_db


def detail_url(item: Item) -> str:
    return f"/api/items/{item.pk}/"


def assert_problem(response, status: HTTPStatus, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


# --- validators and matching, without a request --------------------------------


def test_etag_is_strong_and_built_from_id_and_version_alone():
    assert etag_for(7, 3) == '"7-3"'


def test_last_modified_is_an_http_date_in_whole_seconds(item):
    assert last_modified_for(item.updated_at) == http_date(int(item.updated_at.timestamp()))


@pytest.mark.parametrize(
    ("header", "passes"),
    [
        ('"7-3"', True),
        ("*", True),
        ('"1-1", "7-3"', True),
        ('"7-2"', False),
        ('W/"7-3"', False),  # If-Match uses the strong comparison
        ('"7-3', False),  # malformed
        ("", False),
    ],
)
def test_if_match_uses_strong_comparison_over_a_list(header, passes):
    assert if_match_passes(header, '"7-3"') is passes


@pytest.mark.parametrize(
    ("header", "passes"),
    [
        ('"7-3"', False),
        ('W/"7-3"', False),  # If-None-Match uses the weak comparison
        ('"1-1", W/"7-3"', False),
        ("*", False),
        ('"7-2"', True),
        ('"7-2", "7-4"', True),
    ],
)
def test_if_none_match_uses_weak_comparison_over_a_list(header, passes):
    assert if_none_match_passes(header, '"7-3"') is passes


@pytest.mark.parametrize(
    ("headers", "not_modified"),
    [
        ({"If-None-Match": '"7-3"'}, True),
        ({"If-None-Match": '"7-2"'}, False),
        ({"If-Modified-Since": "Sun, 29 Nov 2026 09:00:00 GMT"}, False),
        ({}, False),
    ],
)
def test_without_updated_at_only_if_none_match_can_give_304(headers, not_modified):
    """A cache hit that stores the version but not `updated_at` still answers 304."""
    request = RequestFactory().get("/api/items/7/", headers=headers)

    assert is_not_modified(request, etag='"7-3"', updated_at=None) is not_modified


# --- GET ----------------------------------------------------------------------


def test_get_returns_etag_and_last_modified(api_client, item):
    response = api_client.get(detail_url(item))

    assert response.status_code == HTTPStatus.OK
    assert response["ETag"] == f'"{item.pk}-1"'
    assert response["Last-Modified"] == last_modified_for(item.updated_at)


def test_a_matching_if_none_match_is_304_without_a_body(api_client, item):
    response = api_client.get(detail_url(item), HTTP_IF_NONE_MATCH=f'W/"{item.pk}-1"')

    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert response.content == b""
    assert response["ETag"] == f'"{item.pk}-1"'


def test_an_if_none_match_of_an_older_version_gets_the_new_representation(api_client, item):
    item.save()

    response = api_client.get(detail_url(item), HTTP_IF_NONE_MATCH=f'"{item.pk}-1"')

    assert response.status_code == HTTPStatus.OK
    assert response.json()["version"] == 2
    assert response["ETag"] == f'"{item.pk}-2"'


def test_if_modified_since_at_last_modified_is_304(api_client, item):
    since = last_modified_for(item.updated_at)

    response = api_client.get(detail_url(item), HTTP_IF_MODIFIED_SINCE=since)

    assert response.status_code == HTTPStatus.NOT_MODIFIED


def test_if_modified_since_before_the_change_is_200(api_client, item):
    since = last_modified_for(item.updated_at - timedelta(seconds=1))

    response = api_client.get(detail_url(item), HTTP_IF_MODIFIED_SINCE=since)

    assert response.status_code == HTTPStatus.OK


def test_if_none_match_wins_over_if_modified_since(api_client, item):
    response = api_client.get(
        detail_url(item),
        HTTP_IF_NONE_MATCH='"0-0"',
        HTTP_IF_MODIFIED_SINCE=last_modified_for(item.updated_at),
    )

    assert response.status_code == HTTPStatus.OK


def test_a_malformed_if_modified_since_is_ignored(api_client, item):
    response = api_client.get(detail_url(item), HTTP_IF_MODIFIED_SINCE="yesterday")

    assert response.status_code == HTTPStatus.OK


# --- writes -------------------------------------------------------------------


def test_create_returns_the_etag_of_version_1(auth_client):
    response = auth_client.post("/api/items/", {"name": "Lamp", "price": "1.00"}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert response["ETag"] == f'"{body["id"]}-1"'
    assert response["Last-Modified"]


@pytest.mark.parametrize("if_match", [None, '"{id}-1"', "*", '"0-0", "{id}-1"'])
def test_a_patch_that_meets_its_precondition_returns_the_new_etag(auth_client, item, if_match):
    headers = {} if if_match is None else {"HTTP_IF_MATCH": if_match.format(id=item.pk)}

    response = auth_client.patch(detail_url(item), {"quantity": 9}, format="json", **headers)

    assert response.status_code == HTTPStatus.OK
    assert response["ETag"] == f'"{item.pk}-2"'
    item.refresh_from_db()
    assert (item.quantity, item.version) == (9, 2)


def test_put_with_the_current_etag_replaces_the_item(auth_client, item):
    payload = {"name": "New", "description": "", "price": "2.50", "quantity": 1}

    response = auth_client.put(
        detail_url(item), payload, format="json", HTTP_IF_MATCH=f'"{item.pk}-1"'
    )

    assert response.status_code == HTTPStatus.OK
    assert response["ETag"] == f'"{item.pk}-2"'
    assert response["Last-Modified"] == last_modified_for(Item.objects.get().updated_at)


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("put", {"name": "New", "description": "", "price": "2.50", "quantity": 1}),
        ("patch", {"quantity": 9}),
        ("delete", None),
    ],
)
def test_a_stale_if_match_is_412_and_changes_nothing(auth_client, item, method, payload):
    item.save()  # version 2: the client's "-1" is stale

    response = getattr(auth_client, method)(
        detail_url(item), payload, format="json", HTTP_IF_MATCH=f'"{item.pk}-1"'
    )

    assert_problem(response, HTTPStatus.PRECONDITION_FAILED, "precondition_failed")
    assert Item.objects.values("name", "price", "quantity", "version").get() == {
        "name": item.name,
        "price": item.price,
        "quantity": item.quantity,
        "version": 2,
    }


def test_a_weak_if_match_never_matches(auth_client, item):
    response = auth_client.delete(detail_url(item), HTTP_IF_MATCH=f'W/"{item.pk}-1"')

    assert_problem(response, HTTPStatus.PRECONDITION_FAILED, "precondition_failed")
    assert Item.objects.exists()


def test_a_stale_if_match_is_412_even_when_the_body_is_invalid(auth_client, item):
    item.save()

    response = auth_client.patch(
        detail_url(item), {"price": "-1"}, format="json", HTTP_IF_MATCH=f'"{item.pk}-1"'
    )

    assert_problem(response, HTTPStatus.PRECONDITION_FAILED, "precondition_failed")


def test_delete_with_the_current_etag_deletes(auth_client, item):
    response = auth_client.delete(detail_url(item), HTTP_IF_MATCH=f'"{item.pk}-1"')

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert not Item.objects.exists()


def test_if_match_on_an_absent_item_is_404(auth_client):
    response = auth_client.delete("/api/items/987654/", HTTP_IF_MATCH='"987654-1"')

    assert_problem(response, HTTPStatus.NOT_FOUND, "not_found")


def test_an_anonymous_write_is_401_before_its_precondition(api_client, item):
    response = api_client.delete(detail_url(item), HTTP_IF_MATCH='"0-0"')

    assert_problem(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")


@override_settings(API_REQUIRE_IF_MATCH=True)
@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("put", {"name": "New", "description": "", "price": "2.50", "quantity": 1}),
        ("patch", {"quantity": 9}),
        ("delete", None),
    ],
)
def test_a_write_without_if_match_is_428_when_required(auth_client, item, method, payload):
    response = getattr(auth_client, method)(detail_url(item), payload, format="json")

    assert_problem(response, HTTPStatus.PRECONDITION_REQUIRED, "precondition_required")
    assert Item.objects.values_list("version", flat=True).get() == 1


@override_settings(API_REQUIRE_IF_MATCH=True)
def test_a_write_with_if_match_passes_when_required(auth_client, item):
    response = auth_client.patch(
        detail_url(item), {"quantity": 9}, format="json", HTTP_IF_MATCH=f'"{item.pk}-1"'
    )

    assert response.status_code == HTTPStatus.OK


@override_settings(API_REQUIRE_IF_MATCH=True)
def test_create_needs_no_if_match_when_required(auth_client):
    response = auth_client.post("/api/items/", {"name": "Lamp", "price": "1.00"}, format="json")

    assert response.status_code == HTTPStatus.CREATED


def test_if_match_any_holds_while_the_item_exists_though_another_write_came_first(
    auth_client, item, monkeypatch
):
    """`*` names no version (RFC 9110, 13.1.1): a write committed since the read passes it."""
    from items.views import ItemViewSet

    read_item = ItemViewSet.get_object

    def read_then_another_client_writes(view):
        found = read_item(view)
        Item.objects.get(pk=found.pk).save()
        return found

    monkeypatch.setattr(ItemViewSet, "get_object", read_then_another_client_writes)

    response = auth_client.patch(
        detail_url(item), {"quantity": 9}, format="json", HTTP_IF_MATCH="*"
    )

    assert response.status_code == HTTPStatus.OK
    assert response["ETag"] == f'"{item.pk}-3"'
