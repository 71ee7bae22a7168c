"""Browser clients on other origins: preflights, and CORS headers on every API answer."""

from http import HTTPStatus

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from tests.test_throttling import cache_prefix, low_rates  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
EXPOSED = {"etag", "location", "x-cache", "x-request-id", "retry-after"}


@pytest.fixture
def app_origin_allowed():
    """As CORS_ALLOWED_ORIGINS=https://app.example.com in the environment makes the settings."""
    from backend.settings import with_cors

    middleware = with_cors(django_settings.MIDDLEWARE)
    with override_settings(CORS_ALLOWED_ORIGINS=[APP_ORIGIN], MIDDLEWARE=middleware):
        yield


def preflight(client, path: str, *, origin: str, method: str, headers: str):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def listed(value: str) -> set[str]:
    return {name.strip().lower() for name in value.split(",")}


def test_an_allowed_origin_in_the_environment_installs_the_middleware_early():
    from tests.test_deploy_settings import settings_as_json

    found = settings_as_json(
        {"DJANGO_DEBUG": "1", "CORS_ALLOWED_ORIGINS": APP_ORIGIN},
        "MIDDLEWARE",
        "CORS_ALLOWED_ORIGINS",
    )

    assert found["CORS_ALLOWED_ORIGINS"] == [APP_ORIGIN]
    middleware = found["MIDDLEWARE"]
    assert (
        middleware.index("corsheaders.middleware.CorsMiddleware")
        == middleware.index("django.middleware.security.SecurityMiddleware") - 1
    )


def test_no_origin_is_allowed_by_default(api_client, item):
    assert django_settings.CORS_ALLOWED_ORIGINS == []
    assert "corsheaders.middleware.CorsMiddleware" not in django_settings.MIDDLEWARE

    answer = preflight(
        api_client, f"/api/items/{item.pk}/", origin=APP_ORIGIN, method="PUT", headers="if-match"
    )
    read = api_client.get(f"/api/items/{item.pk}/", HTTP_ORIGIN=APP_ORIGIN)

    assert "Access-Control-Allow-Origin" not in answer
    assert "Access-Control-Allow-Origin" not in read


def test_a_preflight_from_an_allowed_origin_allows_the_headers_the_api_uses(
    api_client, item, app_origin_allowed
):
    answer = preflight(
        api_client,
        f"/api/items/{item.pk}/",
        origin=APP_ORIGIN,
        method="PUT",
        headers="authorization, content-type, if-match",
    )

    assert answer.status_code == HTTPStatus.OK
    assert answer["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert {"put", "patch", "delete"} <= listed(answer["Access-Control-Allow-Methods"])
    assert {"authorization", "content-type", "if-match", "if-none-match"} <= listed(
        answer["Access-Control-Allow-Headers"]
    )
    assert "Access-Control-Allow-Credentials" not in answer
    assert int(answer["Access-Control-Max-Age"]) > 0


def test_a_preflight_from_another_origin_gets_no_permission(api_client, item, app_origin_allowed):
    answer = preflight(
        api_client, "/api/items/", origin=OTHER_ORIGIN, method="POST", headers="authorization"
    )

    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_a_cross_origin_cache_hit_carries_the_cors_headers(api_client, item, app_origin_allowed):
    path = f"/api/items/{item.pk}/"
    api_client.get(path, HTTP_ORIGIN=APP_ORIGIN)

    hit = api_client.get(path, HTTP_ORIGIN=APP_ORIGIN)

    assert (hit.status_code, hit["X-Cache"]) == (HTTPStatus.OK, "HIT")
    assert hit["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert listed(hit["Access-Control-Expose-Headers"]) == EXPOSED
    assert "origin" in listed(hit["Vary"])


def test_a_cross_origin_write_exposes_location_and_etag(auth_client, app_origin_allowed):
    created = auth_client.post(
        "/api/items/", {"name": "Lamp", "price": "19.99"}, format="json", HTTP_ORIGIN=APP_ORIGIN
    )

    assert created.status_code == HTTPStatus.CREATED
    assert created["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert {"location", "etag"} <= listed(created["Access-Control-Expose-Headers"])


def test_the_admin_is_not_opened_to_other_origins(client, app_origin_allowed):
    answer = preflight(
        client, "/admin/login/", origin=APP_ORIGIN, method="POST", headers="content-type"
    )

    assert "Access-Control-Allow-Origin" not in answer


@pytest.mark.usefixtures("low_rates")
def test_a_cross_origin_client_can_read_retry_after_on_a_429(api_client, item, app_origin_allowed):
    path = f"/api/items/{item.pk}/"
    answers = [api_client.get(path, HTTP_ORIGIN=APP_ORIGIN) for _ in range(4)]

    throttled = answers[-1]
    assert throttled.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert throttled["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "retry-after" in listed(throttled["Access-Control-Expose-Headers"])
