"""PostgreSQL unreachable: API requests get a 503 problem with Retry-After, cache hits still 200."""

import contextlib
from http import HTTPStatus

import pytest
from django.db import connections

from tests.factories import ItemFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def postgresql_unreachable():
    """Point the connection at a port where nothing listens; restore it after."""
    connection = connections["default"]
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port


@pytest.fixture
def database_away():
    with postgresql_unreachable():
        yield


def request(client, method, path, **kwargs):
    return getattr(client, method)(path, format="json", **kwargs)


@pytest.fixture
def cached_item(api_client):
    item = ItemFactory()
    assert api_client.get(f"/api/items/{item.pk}/")["X-Cache"] == "MISS"
    return item


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("anonymous", "get", "/api/items/990001/"),  # a cache miss, through the shortcut
        ("anonymous", "get", "/api/items/"),
        ("authenticated", "get", "/api/items/990001/"),  # the token is looked up first
        ("authenticated", "post", "/api/items/"),
    ],
)
def test_requests_that_need_the_database_get_a_503_problem(
    api_client, auth_client, database_away, who, method, path
):
    client = api_client if who == "anonymous" else auth_client

    response = request(client, method, path, data={"name": "x", "price": "1.00"})

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = response.json()
    assert (body["code"], body["request_id"]) == ("database_unavailable", response["X-Request-ID"])


def test_the_read_shortcut_answers_as_drf_does(api_client, database_away, drf_cycles):
    shortcut = api_client.get("/api/items/990001/")
    # An Accept header the shortcut does not take: DRF negotiates JSON itself.
    through_drf = api_client.get("/api/items/990001/", HTTP_ACCEPT="application/json; q=1.0")

    assert len(drf_cycles) == 1
    assert shortcut.status_code == through_drf.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    for header in ("Content-Type", "Retry-After", "Allow", "Vary"):
        assert shortcut[header] == through_drf[header], header


def test_a_cached_item_is_still_served(api_client, cached_item, database_away):
    response = api_client.get(f"/api/items/{cached_item.pk}/")

    assert (response.status_code, response["X-Cache"]) == (HTTPStatus.OK, "HIT")
    assert response.json()["name"] == cached_item.name


def test_the_error_is_not_cached_and_the_item_is_read_once_it_is_back(api_client):
    item = ItemFactory()
    with postgresql_unreachable():
        during = api_client.get(f"/api/items/{item.pk}/")

    after = api_client.get(f"/api/items/{item.pk}/")

    assert during.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert (after.status_code, after["X-Cache"]) == (HTTPStatus.OK, "MISS")
