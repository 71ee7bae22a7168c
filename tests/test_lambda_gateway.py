"""Where Django behind API Gateway and Lambda usually goes wrong, each decided and tested.

The client address, a named stage's path prefix, Host, cookies, binary and compressed
responses, base64 request bodies and the payload limits; events as API Gateway sends them,
against the real PostgreSQL and Redis.
"""

import base64
import gzip
import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.authtoken.models import Token

from tests.factories import ItemFactory, UserFactory
from tests.lambda_events import API_DOMAIN, http_api_event, load_handler, response_body

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOM_DOMAIN = "items.example.com"
# Lambda's limit on a synchronous invocation's request and response documents.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024


@pytest.fixture(autouse=True)
def gateway_settings(settings):
    settings.ALLOWED_HOSTS = [API_DOMAIN, CUSTOM_DOMAIN]
    settings.CSRF_TRUSTED_ORIGINS = [f"https://{API_DOMAIN}"]


def invoke(event: dict) -> dict:
    answer = load_handler().handler(event, None)
    json.dumps(answer)  # what Lambda does with it: anything else fails the invocation
    return answer


def json_of(answer: dict):
    return json.loads(response_body(answer))


# --- the client address ----------------------------------------------------------------


@pytest.mark.parametrize("proxies", [0, 1, 2])
def test_throttling_counts_the_address_api_gateway_saw_not_the_one_a_client_claims(
    settings, proxies
):
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "NUM_PROXIES": proxies,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/min", "user": None},
    }
    statuses = [
        invoke(
            http_api_event(
                "GET",
                "/api/items/",
                headers={"x-forwarded-for": f"10.0.0.{n}"},
                source_ip="192.0.2.1",
            )
        )["statusCode"]
        for n in range(3)
    ]
    another_client = invoke(http_api_event("GET", "/api/items/", source_ip="192.0.2.2"))

    assert statuses == [HTTPStatus.OK, HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS]
    assert another_client["statusCode"] == HTTPStatus.OK


def test_a_payload_1_0_event_takes_its_client_address_from_the_request_context(settings):
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {"anon": "1/min", "user": None}
    }
    item = ItemFactory()

    def v1_event(claimed: str) -> dict:
        return {
            "version": "1.0",
            "resource": "$default",
            "path": f"/api/items/{item.pk}/",
            "httpMethod": "GET",
            "headers": {
                "Host": API_DOMAIN,
                "X-Forwarded-For": f"{claimed}, 192.0.2.1",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Port": "443",
            },
            "multiValueHeaders": {
                "Host": [API_DOMAIN],
                "X-Forwarded-For": [f"{claimed}, 192.0.2.1"],
                "X-Forwarded-Proto": ["https"],
                "X-Forwarded-Port": ["443"],
            },
            "queryStringParameters": None,
            "requestContext": {"stage": "$default", "identity": {"sourceIp": "192.0.2.1"}},
            "body": None,
            "isBase64Encoded": False,
        }

    first, second = invoke(v1_event("10.0.0.1")), invoke(v1_event("10.0.0.2"))

    assert first["statusCode"] == HTTPStatus.OK
    assert json.loads(first["body"])["id"] == item.pk
    assert second["statusCode"] == HTTPStatus.TOO_MANY_REQUESTS


# --- a named stage -----------------------------------------------------------------------


@pytest.fixture
def token(db) -> str:
    return Token.objects.create(user=UserFactory()).key


def test_under_a_named_stage_location_and_page_links_carry_the_stage(token):
    ItemFactory.create_batch(3)
    created = invoke(
        http_api_event(
            "POST",
            "/api/items/",
            stage="prod",
            headers={"authorization": f"Token {token}", "content-type": "application/json"},
            body=b'{"name": "Lamp", "price": "2.00"}',
        )
    )
    page = json_of(invoke(http_api_event("GET", "/api/items/", query="page_size=2", stage="prod")))
    item_id = json_of(created)["id"]
    read = invoke(http_api_event("GET", f"/api/items/{item_id}/", stage="prod"))

    assert created["statusCode"] == HTTPStatus.CREATED
    assert created["headers"]["location"] == f"https://{API_DOMAIN}/prod/api/items/{item_id}/"
    assert page["next"] == f"https://{API_DOMAIN}/prod/api/items/?page=2&page_size=2"
    assert (read["statusCode"], json_of(read)["name"]) == (HTTPStatus.OK, "Lamp")


def test_under_a_named_stage_redirects_and_page_assets_carry_the_stage():
    root = invoke(http_api_event("GET", "/", stage="prod"))
    admin = invoke(http_api_event("GET", "/admin/", stage="prod"))
    docs = invoke(http_api_event("GET", "/api/docs/", stage="prod"))
    assets = re.findall(r'(?:href|src)="(/[^"]*\.(?:css|js|png))"', response_body(docs).decode())
    login = response_body(invoke(http_api_event("GET", "/admin/login/", stage="prod"))).decode()

    assert root["headers"]["location"] == "/prod/api/docs/"
    assert admin["headers"]["location"] == "/prod/admin/login/?next=/prod/admin/"
    assert assets
    assert all(asset.startswith("/prod/static/") for asset in assets), assets
    assert 'href="/prod/static/admin/css/base.css"' in login
    for asset in assets:
        path = asset.removeprefix("/prod")
        assert invoke(http_api_event("GET", path, stage="prod"))["statusCode"] == HTTPStatus.OK


def test_without_a_stage_in_the_path_nothing_is_taken_off_it():
    item = ItemFactory()
    on_default = invoke(http_api_event("GET", f"/api/items/{item.pk}/", stage="$default"))
    named_but_absent = http_api_event("GET", f"/api/items/{item.pk}/", domain=CUSTOM_DOMAIN)
    named_but_absent["requestContext"]["stage"] = "prod"

    assert on_default["statusCode"] == HTTPStatus.OK
    assert invoke(named_but_absent)["statusCode"] == HTTPStatus.OK
    assert invoke(http_api_event("GET", "/", domain=CUSTOM_DOMAIN))["headers"]["location"] == (
        "/api/docs/"
    )


def test_behind_a_custom_domain_a_stage_in_the_path_is_routed_past_and_left_out_of_urls(token):
    """The client's URL has no stage segment there, even when the event's path has one."""
    ItemFactory.create_batch(2)
    created = invoke(
        http_api_event(
            "POST",
            "/api/items/",
            stage="prod",
            domain=CUSTOM_DOMAIN,
            headers={"authorization": f"Token {token}", "content-type": "application/json"},
            body=b'{"name": "Lamp", "price": "2.00"}',
        )
    )
    page = json_of(
        invoke(
            http_api_event(
                "GET", "/api/items/", query="page_size=2", stage="prod", domain=CUSTOM_DOMAIN
            )
        )
    )
    item_id = json_of(created)["id"]

    assert created["headers"]["location"] == f"https://{CUSTOM_DOMAIN}/api/items/{item_id}/"
    assert page["next"] == f"https://{CUSTOM_DOMAIN}/api/items/?page=2&page_size=2"


# --- Host ----------------------------------------------------------------------------------


def test_a_host_outside_allowed_hosts_is_refused_and_the_api_domain_and_custom_domain_answer():
    stranger = invoke(http_api_event("GET", "/api/items/", domain="other.example.net"))

    assert stranger["statusCode"] == HTTPStatus.BAD_REQUEST
    assert invoke(http_api_event("GET", "/api/items/"))["statusCode"] == HTTPStatus.OK
    assert invoke(http_api_event("GET", "/api/items/", domain=CUSTOM_DOMAIN))["statusCode"] == (
        HTTPStatus.OK
    )
    health = invoke(http_api_event("GET", "/healthz", domain="10.0.3.7"))
    assert (health["statusCode"], json_of(health)) == (HTTPStatus.OK, {"status": "ok"})


# --- cookies ---------------------------------------------------------------------------------


def cookie_pairs(answer: dict) -> dict[str, str]:
    """name -> value of each cookie the answer sets (payload 2.0's `cookies` list)."""
    return dict(cookie.split(";", 1)[0].split("=", 1) for cookie in answer["cookies"])


def test_the_admin_login_survives_the_round_trip_of_session_and_csrf_cookies():
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    form_page = invoke(http_api_event("GET", "/admin/login/", stage="prod"))
    csrf_cookie = cookie_pairs(form_page)["csrftoken"]
    form_token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', response_body(form_page).decode()
    ).group(1)
    form = (
        f"csrfmiddlewaretoken={form_token}&username=admin"
        "&password=correct+horse+battery+staple&next=/prod/admin/"
    )

    logged_in = invoke(
        http_api_event(
            "POST",
            "/admin/login/",
            stage="prod",
            cookies=[f"csrftoken={csrf_cookie}", "unrelated=1"],
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "origin": f"https://{API_DOMAIN}",
                "referer": f"https://{API_DOMAIN}/prod/admin/login/",
            },
            body=form.encode(),
        )
    )
    session = cookie_pairs(logged_in)
    index = invoke(
        http_api_event(
            "GET",
            "/admin/",
            stage="prod",
            cookies=[
                f"csrftoken={session.get('csrftoken', csrf_cookie)}",
                f"sessionid={session['sessionid']}",
            ],
        )
    )

    assert logged_in["statusCode"] == HTTPStatus.FOUND, response_body(logged_in)[:500]
    assert logged_in["headers"]["location"] == "/prod/admin/"
    assert all("Secure" in cookie and "HttpOnly" in cookie for cookie in logged_in["cookies"])
    assert all(cookie == cookie.strip() for cookie in form_page["cookies"] + logged_in["cookies"])
    assert "set-cookie" not in logged_in["headers"]
    assert index["statusCode"] == HTTPStatus.OK
    assert "Site administration" in response_body(index).decode()


def test_a_form_post_without_the_csrf_cookie_is_refused():
    UserFactory(username="admin", is_staff=True)
    refused = invoke(
        http_api_event(
            "POST",
            "/admin/login/",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "origin": f"https://{API_DOMAIN}",
            },
            body=b"csrfmiddlewaretoken=x&username=admin&password=correct+horse+battery+staple",
        )
    )
    assert refused["statusCode"] == HTTPStatus.FORBIDDEN


# --- binary and compressed responses ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/admin/css/base.css",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
    ],
)
def test_a_compressed_static_file_goes_out_base64_and_decodes_to_the_file(path, collected_static):
    answer = invoke(http_api_event("GET", path, headers={"accept-encoding": "gzip, br"}))
    plain = invoke(http_api_event("GET", path))
    original = (collected_static / path.removeprefix("/static/")).read_bytes()

    assert answer["statusCode"] == HTTPStatus.OK
    assert answer["isBase64Encoded"] is True
    assert answer["headers"]["content-encoding"] in ("gzip", "br")
    if answer["headers"]["content-encoding"] == "gzip":
        assert gzip.decompress(response_body(answer)) == original
    assert int(answer["headers"]["content-length"]) == len(response_body(answer))
    assert response_body(plain) == original


def test_a_binary_static_file_goes_out_base64_byte_for_byte(collected_static):
    path = "drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png"
    answer = invoke(http_api_event("GET", f"/static/{path}"))

    assert answer["isBase64Encoded"] is True
    assert answer["headers"]["content-type"] == "image/png"
    assert response_body(answer) == (collected_static / path).read_bytes()


def test_json_answers_go_out_as_text_not_base64():
    answer = invoke(http_api_event("GET", "/api/items/"))
    assert answer["isBase64Encoded"] is False
    assert json.loads(answer["body"])["count"] == 0


def test_every_static_file_fits_lambdas_response_limit_uncompressed(collected_static):
    largest = max(
        (path for path in Path(collected_static).rglob("*") if path.is_file()),
        key=lambda path: path.stat().st_size,
    )
    encoded = len(base64.b64encode(largest.read_bytes()))
    assert encoded < LAMBDA_PAYLOAD_BYTES - 64 * 1024, largest


# --- request bodies -----------------------------------------------------------------------


def test_a_base64_encoded_request_body_is_decoded(token):
    answer = invoke(
        http_api_event(
            "POST",
            "/api/items/",
            headers={"authorization": f"Token {token}", "content-type": "application/json"},
            body='{"name": "Élan", "price": "3.00"}'.encode(),
            base64_body=True,
        )
    )
    assert answer["statusCode"] == HTTPStatus.CREATED
    assert json_of(answer)["name"] == "Élan"


def test_a_base64_body_over_the_api_limit_is_413_problem_json(token, settings):
    body = json.dumps({"name": "x" * settings.API_MAX_BODY_BYTES, "price": "1"}).encode()
    answer = invoke(
        http_api_event(
            "POST",
            "/api/items/",
            headers={"authorization": f"Token {token}", "content-type": "application/json"},
            body=body,
            base64_body=True,
        )
    )
    assert answer["statusCode"] == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert answer["headers"]["content-type"] == "application/problem+json"
    assert json_of(answer)["code"] == "request_too_large"


def test_the_body_limit_stays_well_inside_what_lambda_accepts_base64_encoded():
    """A body Django would still parse must reach it: Lambda refuses larger events itself."""
    encoded = 4 * -(-django_settings.API_MAX_BODY_BYTES // 3)
    assert encoded + 16 * 1024 < LAMBDA_PAYLOAD_BYTES


@pytest.mark.parametrize("stage", ["$default", "prod"])
def test_readiness_is_not_answered_through_the_api(stage):
    """It reports the data tier; every Lambda request comes through the public API."""
    answer = invoke(http_api_event("GET", "/readyz", stage=stage))

    assert answer["statusCode"] == HTTPStatus.NOT_FOUND
    assert json.loads(response_body(answer))["code"] == "not_found"
    assert invoke(http_api_event("GET", "/healthz"))["statusCode"] == HTTPStatus.OK
