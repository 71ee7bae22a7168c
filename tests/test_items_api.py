"""The items API: every row of the README's API table, pagination and auth."""

from datetime import datetime
from decimal import Decimal
from http import HTTPStatus

import pytest

from items.models import Item
from items.views import ItemViewSet
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/items/"


def detail_url(item_id) -> str:
    return f"/api/items/{item_id}/"


def valid_payload(**overrides) -> dict:
    return {
        "name": "Widget",
        "description": "A small widget",
        "price": "12.50",
        "quantity": 3,
    } | overrides


def test_create_returns_201_with_location_and_the_item(auth_client):
    response = auth_client.post(LIST_URL, valid_payload(), format="json")

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert response["Location"] == f"http://testserver/api/items/{body['id']}/"
    assert body == {
        "id": body["id"],
        "name": "Widget",
        "description": "A small widget",
        "price": "12.50",
        "quantity": 3,
        "version": 1,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z")
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0
    assert Item.objects.get(pk=body["id"]).price == 12.5


def test_create_applies_defaults_and_trims_the_name(auth_client):
    response = auth_client.post(LIST_URL, {"name": "  Bolt  ", "price": "1"}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert (body["name"], body["description"], body["price"], body["quantity"]) == (
        "Bolt",
        "",
        "1.00",
        0,
    )


def test_retrieve_returns_the_item(api_client, item):
    response = api_client.get(detail_url(item.pk))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "id": item.pk,
        "name": item.name,
        "description": item.description,
        "price": f"{item.price:.2f}",
        "quantity": item.quantity,
        "version": 1,
        "created_at": item.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": item.updated_at.isoformat().replace("+00:00", "Z"),
    }


def test_put_replaces_every_field_and_bumps_the_version(auth_client, item):
    payload = valid_payload(name="Replaced", description="", price="0.00", quantity=0)

    response = auth_client.put(detail_url(item.pk), payload, format="json")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert {k: body[k] for k in payload} == payload
    assert body["version"] == 2
    item.refresh_from_db()
    assert (item.name, item.version) == ("Replaced", 2)


def test_put_requires_every_writable_field(auth_client, item):
    response = auth_client.put(detail_url(item.pk), {"name": "Only a name"}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()["errors"]) == {"description", "price", "quantity"}
    item.refresh_from_db()
    assert item.version == 1


def test_patch_changes_only_the_given_fields(auth_client, item):
    response = auth_client.patch(detail_url(item.pk), {"quantity": 42}, format="json")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert (body["quantity"], body["name"], body["version"]) == (42, item.name, 2)


def test_a_patch_keeps_a_change_committed_after_the_item_was_read(auth_client, item, monkeypatch):
    """Without If-Match, a PATCH of one field never puts back the others as first read."""
    read_item = ItemViewSet.get_object

    def read_then_another_client_writes(view):
        read = read_item(view)
        Item.objects.filter(pk=read.pk).update(price=Decimal("99.00"))
        return read

    monkeypatch.setattr(ItemViewSet, "get_object", read_then_another_client_writes)

    response = auth_client.patch(detail_url(item.pk), {"quantity": 7}, format="json")

    assert response.status_code == HTTPStatus.OK
    item.refresh_from_db()
    assert (item.price, item.quantity) == (Decimal("99.00"), 7)
    body = response.json()
    assert (body["price"], body["quantity"], body["version"]) == ("99.00", 7, item.version)


def test_read_only_fields_are_ignored_on_write(auth_client, item):
    response = auth_client.patch(
        detail_url(item.pk), {"id": 999, "version": 50, "quantity": 1}, format="json"
    )

    assert response.status_code == HTTPStatus.OK
    assert (response.json()["id"], response.json()["version"]) == (item.pk, 2)


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_write_to_an_item_deleted_after_it_was_read_is_404(
    auth_client, item, monkeypatch, method
):
    from items.views import ItemViewSet

    get_object = ItemViewSet.get_object

    def get_object_then_lose_the_race(view):
        found = get_object(view)
        Item.objects.filter(pk=found.pk).delete()  # another request's DELETE commits
        return found

    monkeypatch.setattr(ItemViewSet, "get_object", get_object_then_lose_the_race)
    response = getattr(auth_client, method)(detail_url(item.pk), valid_payload(), format="json")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"] == "application/problem+json"
    assert not Item.objects.filter(pk=item.pk).exists()


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_list_parameters_do_not_decide_whether_an_item_is_found(auth_client, item, method):
    query = "?min_price=99999999.00&search=absent&ordering=-price"
    response = getattr(auth_client, method)(f"{detail_url(item.pk)}{query}", {}, format="json")

    assert response.status_code < 300


def test_delete_returns_204_and_a_later_get_404(auth_client, item):
    response = auth_client.delete(detail_url(item.pk))

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""
    assert auth_client.get(detail_url(item.pk)).status_code == HTTPStatus.NOT_FOUND
    assert not Item.objects.filter(pk=item.pk).exists()


def test_list_is_paginated_in_id_order(api_client):
    items = ItemFactory.create_batch(25)

    first = api_client.get(LIST_URL).json()
    second = api_client.get(LIST_URL, {"page": 2}).json()

    assert first["count"] == 25
    assert [row["id"] for row in first["results"]] == [item.pk for item in items[:20]]
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/items/?page=2"
    assert [row["id"] for row in second["results"]] == [item.pk for item in items[20:]]
    assert second["next"] is None


def test_page_size_is_honoured_up_to_100(api_client):
    ItemFactory.create_batch(105)

    assert len(api_client.get(LIST_URL, {"page_size": 5}).json()["results"]) == 5
    assert len(api_client.get(LIST_URL, {"page_size": 500}).json()["results"]) == 100


def test_a_page_past_the_end_is_404(api_client):
    ItemFactory()

    response = api_client.get(LIST_URL, {"page": 9})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("page_size", [1, 20, 100])
def test_list_runs_a_fixed_number_of_queries(api_client, django_assert_num_queries, page_size):
    ItemFactory.create_batch(100)

    with django_assert_num_queries(2):  # COUNT(*) and one SELECT of the page
        response = api_client.get(LIST_URL, {"page_size": page_size})

    assert len(response.json()["results"]) == page_size


class TestAuthentication:
    def test_anonymous_reads_are_allowed(self, api_client, item):
        assert api_client.get(LIST_URL).status_code == HTTPStatus.OK
        assert api_client.get(detail_url(item.pk)).status_code == HTTPStatus.OK

    @pytest.mark.parametrize(
        ("method", "path"),
        [("post", None), ("put", "detail"), ("patch", "detail"), ("delete", "detail")],
    )
    def test_anonymous_writes_get_401_and_change_nothing(self, api_client, item, method, path):
        url = detail_url(item.pk) if path else LIST_URL

        response = getattr(api_client, method)(url, valid_payload(), format="json")

        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["code"] == "not_authenticated"
        assert list(Item.objects.values_list("pk", "version")) == [(item.pk, 1)]

    def test_an_unknown_token_gets_401(self, api_client):
        api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

        response = api_client.post(LIST_URL, valid_payload(), format="json")

        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response.json()["code"] == "authentication_failed"

    def test_a_session_user_can_write(self, api_client, user):
        api_client.force_login(user)

        response = api_client.post(LIST_URL, valid_payload(), format="json")

        assert response.status_code == HTTPStatus.CREATED

    def test_drf_create_token_issues_a_working_token(self, api_client, user):
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("drf_create_token", user.username, stdout=out)
        key = out.getvalue().split()[2]
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

        assert api_client.post(LIST_URL, valid_payload(), format="json").status_code == 201
