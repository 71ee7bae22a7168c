"""The OpenAPI description, and the docs pages that render it from local assets."""

from http import HTTPStatus
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

# What every operation that takes a body may answer besides its success.
WITH_BODY = {"400", "401", "403", "408", "411", "413", "415", "429", "500", "503"}
OPERATIONS = {
    ("/api/items/", "get"): {"200", "400", "404", "429", "500", "503"},
    ("/api/items/", "post"): {"201", *WITH_BODY},
    ("/api/items/{id}/", "get"): {"200", "304", "404", "429", "500", "503"},
    ("/api/items/{id}/", "put"): {"200", "404", "412", "428", *WITH_BODY},
    ("/api/items/{id}/", "patch"): {"200", "404", "412", "428", *WITH_BODY},
    ("/api/items/{id}/", "delete"): {"204", "401", "403", "404", "412", "428", "429", "500", "503"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        out = StringIO()
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_schema_validates_without_warnings(schema):
    assert schema["openapi"].startswith("3.")


def test_schema_describes_every_operation_and_its_errors(schema):
    described = {
        (path, method): set(operation["responses"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert described == OPERATIONS


def test_error_responses_use_the_problem_shape(schema):
    response = schema["paths"]["/api/items/"]["post"]["responses"]["400"]
    assert response["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def test_writes_declare_token_and_session_auth(schema):
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
    post = schema["paths"]["/api/items/"]["post"]
    assert {"tokenAuth": []} in post["security"]


def test_list_response_is_paginated(schema):
    response = schema["paths"]["/api/items/"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginatedItemList"
    }
    params = {p["name"] for p in schema["paths"]["/api/items/"]["get"]["parameters"]}
    assert {"page", "page_size"} <= params


def test_schema_endpoint_serves_openapi(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == HTTPStatus.OK
    assert response.json()["info"]["title"] == "Items API"


@pytest.mark.parametrize(
    ("path", "asset"),
    [
        ("/api/docs/", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"),
        ("/api/redoc/", "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"),
    ],
)
def test_docs_pages_load_their_assets_from_this_service(api_client, path, asset):
    response = api_client.get(path)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert f"/static/{asset}" in html
    assert "cdn" not in html.lower()


def test_the_committed_openapi_description_is_the_one_the_code_generates(django_db_blocker):
    """docs/openapi.yaml is what infra/ derives API Gateway's routes from: `make schema`."""
    with django_db_blocker.unblock():
        out = StringIO()
        call_command("spectacular", "--validate", stdout=out)
    committed = (Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml").read_text()

    assert committed == out.getvalue(), "docs/openapi.yaml is out of date: run `make schema`"
