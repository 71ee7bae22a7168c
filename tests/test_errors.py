"""Bad input gets a clear JSON error in one shape, never a 500 or HTML, and loses nothing."""

import io
import json
from http import HTTPStatus

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import get_resolver

from items.models import Item

pytestmark = pytest.mark.django_db

LIST_URL = "/api/items/"


def assert_problem(response, status: HTTPStatus, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] == status.phrase
    assert body["code"] == code
    assert body["detail"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


@pytest.mark.parametrize(
    ("payload", "bad_fields"),
    [
        ({}, {"name", "price"}),
        ({"name": "   ", "price": "1.00"}, {"name"}),
        ({"name": "x" * 201, "price": "1.00"}, {"name"}),
        ({"name": "ok", "price": "-0.01"}, {"price"}),
        ({"name": "ok", "price": "100000000.00"}, {"price"}),
        ({"name": "ok", "price": "1.234"}, {"price"}),
        ({"name": "ok", "price": "abc"}, {"price"}),
        ({"name": "ok", "price": "1.00", "quantity": -1}, {"quantity"}),
        ({"name": "ok", "price": "1.00", "quantity": "many"}, {"quantity"}),
        ({"name": None, "price": None}, {"name", "price"}),
    ],
)
def test_invalid_fields_get_400_keyed_by_field(auth_client, payload, bad_fields):
    response = auth_client.post(LIST_URL, payload, format="json")

    body = assert_problem(response, HTTPStatus.BAD_REQUEST, "invalid")
    assert set(body["errors"]) == bad_fields
    assert not Item.objects.exists()


@pytest.mark.parametrize("price", ["-1", "100000000", "1.234", 19.99])
def test_a_price_out_of_range_or_form_says_what_is_accepted(auth_client, price):
    response = auth_client.post(LIST_URL, {"name": "ok", "price": price}, format="json")

    body = assert_problem(response, HTTPStatus.BAD_REQUEST, "invalid")
    assert body["errors"]["price"] == [
        'Give a string from "0.00" to "99999999.99", with at most 2 decimals.'
    ]


def test_a_json_array_body_is_400(auth_client):
    response = auth_client.post(LIST_URL, "[1, 2]", content_type="application/json")

    body = assert_problem(response, HTTPStatus.BAD_REQUEST, "invalid")
    assert "non_field_errors" in body["errors"]


def test_malformed_json_is_400(auth_client):
    response = auth_client.post(LIST_URL, '{"name": "x",', content_type="application/json")

    assert_problem(response, HTTPStatus.BAD_REQUEST, "parse_error")
    assert not Item.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_unsupported_content_type_is_415(auth_client, content_type):
    response = auth_client.generic("POST", LIST_URL, b"name=x", content_type=content_type)

    assert_problem(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")


def body_of(size: int) -> str:
    """A valid item's JSON body of exactly `size` bytes."""
    head, tail = '{"name": "sized", "price": "1.00", "description": "', '"}'
    return head + "x" * (size - len(head) - len(tail)) + tail


def test_a_body_over_the_limit_is_413(auth_client, settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.API_MAX_BODY_BYTES

    response = auth_client.post(
        LIST_URL, body_of(settings.API_MAX_BODY_BYTES + 1), content_type="application/json"
    )

    assert_problem(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large")
    assert not Item.objects.exists()


def test_a_body_at_the_limit_is_accepted(auth_client, settings):
    response = auth_client.post(
        LIST_URL, body_of(settings.API_MAX_BODY_BYTES), content_type="application/json"
    )

    assert response.status_code == HTTPStatus.CREATED


def test_json_nested_deeper_than_python_can_decode_is_400(auth_client):
    deep = "[" * 30_000 + "]" * 30_000  # within the size limit

    response = auth_client.post(LIST_URL, deep, content_type="application/json")

    assert_problem(response, HTTPStatus.BAD_REQUEST, "parse_error")
    assert not Item.objects.exists()


def test_a_wrong_method_is_405(auth_client, item):
    response = auth_client.delete(LIST_URL)

    assert_problem(response, HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("path", ["/api/nothing-here/", "/api/items/1/extra/", "/api/items/abc/"])
def test_unknown_api_routes_are_404_json(api_client, path):
    assert_problem(api_client.get(path), HTTPStatus.NOT_FOUND, "not_found")


def test_an_absent_item_is_404_json(api_client):
    assert_problem(api_client.get("/api/items/987654/"), HTTPStatus.NOT_FOUND, "not_found")


def test_an_id_beyond_bigint_is_404_not_500(api_client):
    assert_problem(api_client.get(f"/api/items/{2**70}/"), HTTPStatus.NOT_FOUND, "not_found")


def test_a_host_that_is_not_allowed_is_a_400_problem_under_the_api(api_client):
    response = api_client.get(LIST_URL, HTTP_HOST="evil.example")

    assert_problem(response, HTTPStatus.BAD_REQUEST, "bad_request")


def test_a_host_that_is_not_allowed_gets_djangos_own_400_page_elsewhere(client):
    response = client.get("/admin/", HTTP_HOST="evil.example")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "text/html; charset=utf-8"


def test_a_permission_denied_outside_drf_is_a_403_problem_under_the_api(rf):
    handler = get_resolver().resolve_error_handler(HTTPStatus.FORBIDDEN)

    response = handler(rf.get(LIST_URL), PermissionDenied())

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content) == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": HTTPStatus.FORBIDDEN,
        "code": "permission_denied",
        "detail": "You do not have permission to perform this action.",
        "request_id": None,
    }


def test_an_unexpected_error_is_a_500_problem(auth_client, monkeypatch):
    from items.views import ItemViewSet

    def explode(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ItemViewSet, "list", explode)
    auth_client.raise_request_exception = False

    response = auth_client.get(LIST_URL)

    assert_problem(response, HTTPStatus.INTERNAL_SERVER_ERROR, "server_error")
    assert "boom" not in response.content.decode()


def test_a_body_without_a_length_that_the_server_cannot_delimit_is_411(item):
    """runserver passes a chunked body on undecoded, without `wsgi.input_terminated`."""
    from backend.wsgi import application

    before = item.quantity
    patch = json.dumps({"quantity": before + 1}).encode()
    environ = {
        "REQUEST_METHOD": "PATCH",
        "PATH_INFO": f"/api/items/{item.pk}/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(b"%x\r\n%s\r\n0\r\n\r\n" % (len(patch), patch)),
        "wsgi.url_scheme": "http",
    }
    started = []

    body = b"".join(application(environ, lambda status, headers: started.append(status)))

    assert started == ["411 Length Required"]
    assert json.loads(body)["code"] == "length_required"
    item.refresh_from_db()
    assert item.quantity == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_api_path_without_its_slash_is_404_naming_the_path_with_it(auth_client, method):
    response = getattr(auth_client, method)("/api/items", {"name": "x", "price": "1.00"})

    body = assert_problem(response, HTTPStatus.NOT_FOUND, "not_found")
    assert body["detail"].endswith("API paths end with a slash: /api/items/")
    assert not Item.objects.exists()


def test_an_unknown_api_path_is_404_without_a_suggestion(api_client):
    response = api_client.get("/api/nothing-here")

    body = assert_problem(response, HTTPStatus.NOT_FOUND, "not_found")
    assert body["detail"] == "No API route matches this path."


@pytest.mark.django_db
def test_a_missing_item_reads_the_same_to_the_read_shortcut_and_to_drf(api_client, auth_client):
    """Anonymous reads skip DRF's request cycle; the problem they get is byte for byte DRF's."""
    anonymous = api_client.get("/api/items/987654/")
    with_a_token = auth_client.get("/api/items/987654/")

    def without_request_id(response) -> bytes:
        return response.content.replace(response.json()["request_id"].encode(), b"")

    assert anonymous.status_code == with_a_token.status_code == HTTPStatus.NOT_FOUND
    assert without_request_id(anonymous) == without_request_id(with_a_token)
    assert anonymous["Content-Type"] == with_a_token["Content-Type"]
