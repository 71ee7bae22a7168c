"""The Lambda handler answers API Gateway events exactly as Django answers the same HTTP requests.

Each scenario runs twice against the real PostgreSQL and Redis, each time on an empty
table: once as API Gateway HTTP API events given to `backend.lambda_handler.handler`,
once as requests through Django's test client, with the same host, scheme, client
address and headers. The answers must agree in status, the headers that matter and the
body, once the row ids, timestamps and request ids that differ between the runs are set
aside.
"""

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from items.models import Item
from tests.lambda_events import API_DOMAIN, http_api_event, load_handler, response_body

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS_THAT_MATTER = (
    "content-type",
    "etag",
    "last-modified",
    "location",
    "x-cache",
    "cache-control",
    "allow",
    "retry-after",
    "www-authenticate",
    "vary",
    "x-frame-options",
    "strict-transport-security",
)
VARYING_FIELDS = {"id", "created_at", "updated_at", "request_id"}


@dataclass
class Answer:
    status: int
    headers: dict
    body: object


@dataclass
class Run:
    """One pass of a scenario: sends requests one way and remembers the item and its ETag."""

    send: object
    source_ip: str
    item_id: int | None = None
    etag: str | None = None
    answers: list = field(default_factory=list)

    def __call__(self, method: str, path: str, *, headers=None, body=None, query="") -> Answer:
        headers = {key: self._fill(value) for key, value in (headers or {}).items()}
        status, raw_headers, raw_body = self.send(
            method, self._fill(path), query, headers, body, self.source_ip
        )
        answer = self._normalise(status, raw_headers, raw_body)
        self.answers.append(answer)
        return answer

    def _fill(self, text: str) -> str:
        return text.replace("{id}", str(self.item_id)).replace("{etag}", self.etag or "")

    def _normalise(self, status, raw_headers, raw_body) -> Answer:
        content_type = raw_headers.get("content-type") or ""
        body = raw_body
        if raw_body and "json" in content_type:
            body = json.loads(raw_body)
            if status == HTTPStatus.CREATED:
                self.item_id = body["id"]
            body = _without_varying_fields(body)
        if raw_headers.get("etag"):
            self.etag = raw_headers["etag"]
        headers = {}
        for name in HEADERS_THAT_MATTER:
            value = raw_headers.get(name)
            if value is not None and self.item_id is not None:
                value = value.replace(f"/{self.item_id}/", "/ID/").replace(
                    f'"{self.item_id}-', '"ID-'
                )
            if name in ("last-modified", "retry-after") and value is not None:
                value = "<present>"  # a time, or seconds to a time: differs between runs
            headers[name] = value
        return Answer(status, headers, body)


def _without_varying_fields(value):
    if isinstance(value, dict):
        return {
            key: "<varies>" if key in VARYING_FIELDS else _without_varying_fields(inner)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_without_varying_fields(inner) for inner in value]
    if isinstance(value, str):  # a 429's detail counts down the seconds left
        return re.sub(r"\b\d+ seconds\b", "<n> seconds", value)
    return value


def through_lambda(method, path, query, headers, body, source_ip):
    event = http_api_event(
        method, path, query=query, headers=headers, body=body, source_ip=source_ip
    )
    answer = load_handler().handler(event, None)
    assert not answer.get("multiValueHeaders")
    assert all(name == name.lower() for name in answer["headers"])
    return answer["statusCode"], answer["headers"], response_body(answer)


def through_test_client(method, path, query, headers, body, source_ip):
    headers = dict(headers)
    content_type = headers.pop("content-type", "application/octet-stream")
    response = Client().generic(
        method,
        f"{path}?{query}" if query else path,
        data=body or b"",
        content_type=content_type,
        secure=True,
        headers=headers,
        HTTP_HOST=API_DOMAIN,
        REMOTE_ADDR=source_ip,
        HTTP_X_FORWARDED_FOR=source_ip,
    )
    raw_headers = {name.lower(): value for name, value in response.headers.items()}
    return response.status_code, raw_headers, response.content


@pytest.fixture(autouse=True)
def gateway_settings(settings):
    settings.ALLOWED_HOSTS = [API_DOMAIN]
    settings.CSRF_TRUSTED_ORIGINS = [f"https://{API_DOMAIN}"]


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


def in_both_ways(scenario) -> tuple[list[Answer], list[Answer]]:
    """Run the scenario through the handler, then through the test client, each on no items."""
    runs = []
    for send, source_ip in (
        (through_lambda, "198.51.100.1"),
        (through_test_client, "198.51.100.2"),
    ):
        Item.objects.all().delete()
        run = Run(send, source_ip)
        scenario(run)
        runs.append(run.answers)
    return runs[0], runs[1]


def json_body(payload) -> bytes:
    return json.dumps(payload).encode()


def assert_same_answers(scenario) -> list[Answer]:
    by_lambda, by_client = in_both_ways(scenario)
    assert len(by_lambda) == len(by_client)
    for number, (lambda_answer, client_answer) in enumerate(zip(by_lambda, by_client, strict=True)):
        assert lambda_answer == client_answer, f"request {number + 1} differs"
    return by_lambda


def test_create_read_update_and_delete_answer_alike_with_the_cache(token):
    auth = {"authorization": f"Token {token}", "content-type": "application/json"}
    item = {"name": "Lamp", "description": "Desk lamp", "price": "19.99", "quantity": 3}

    def scenario(send):
        send("POST", "/api/items/", headers=auth, body=json_body(item))
        send("GET", "/api/items/{id}/")
        send("GET", "/api/items/{id}/")
        send("GET", "/api/items/{id}/", headers={"if-none-match": "{etag}"})
        send(
            "GET",
            "/api/items/{id}/",
            headers={"if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT"},
        )
        send("HEAD", "/api/items/{id}/")
        send(
            "PATCH",
            "/api/items/{id}/",
            headers=auth | {"if-match": "{etag}"},
            body=json_body({"quantity": 9}),
        )
        send("GET", "/api/items/{id}/")
        send(
            "PUT", "/api/items/{id}/", headers=auth | {"if-match": '"{id}-1"'}, body=json_body(item)
        )
        send(
            "PUT",
            "/api/items/{id}/",
            headers=auth | {"if-match": "{etag}"},
            body=json_body(item | {"price": "24.00"}),
        )
        send("GET", "/api/items/{id}/")
        send("DELETE", "/api/items/{id}/", headers=auth | {"if-match": "{etag}"})
        send("GET", "/api/items/{id}/")
        send("GET", "/api/items/{id}/")

    answers = assert_same_answers(scenario)

    statuses = [answer.status for answer in answers]
    assert statuses == [201, 200, 200, 304, 304, 200, 200, 200, 412, 200, 200, 204, 404, 404]
    assert [answers[i].headers["x-cache"] for i in (1, 2, 7, 10)] == ["MISS", "HIT", "MISS", "MISS"]
    assert answers[0].headers["location"] == f"https://{API_DOMAIN}/api/items/ID/"
    assert answers[3].body == b""
    assert answers[5].body == b""
    assert answers[7].body["quantity"] == 9
    assert answers[8].body["code"] == "precondition_failed"


def test_the_list_its_pages_and_filters_answer_alike(token):
    auth = {"authorization": f"Token {token}", "content-type": "application/json"}

    def scenario(send):
        for number in range(3):
            send(
                "POST",
                "/api/items/",
                headers=auth,
                body=json_body({"name": f"Bolt {number}", "price": f"{number}.50"}),
            )
        send("GET", "/api/items/", query="page_size=2")
        send("GET", "/api/items/", query="page=2&page_size=2")
        send("GET", "/api/items/", query="ordering=-price&min_price=1&search=bolt")
        send("GET", "/api/items/", query="in_stock=maybe")
        send("GET", "/api/items/", query="page=99")

    answers = assert_same_answers(scenario)

    assert [answer.status for answer in answers[3:]] == [200, 200, 200, 400, 404]
    assert answers[3].body["next"] == f"https://{API_DOMAIN}/api/items/?page=2&page_size=2"
    assert [row["name"] for row in answers[5].body["results"]] == ["Bolt 2", "Bolt 1"]


def test_every_error_answers_alike_as_problem_json(token, settings):
    settings.API_REQUIRE_IF_MATCH = True
    auth = {"authorization": f"Token {token}", "content-type": "application/json"}

    def scenario(send):
        send("POST", "/api/items/", headers=auth, body=json_body({"name": "Nut", "price": "1"}))
        send("POST", "/api/items/", headers=auth, body=json_body({"name": "", "price": 5}))
        send("POST", "/api/items/", headers=auth, body=b'{"name": ')
        send("POST", "/api/items/", headers=auth | {"content-type": "text/plain"}, body=b"Nut")
        send(
            "POST",
            "/api/items/",
            headers=auth,
            body=json_body({"name": "x" * (settings.API_MAX_BODY_BYTES + 1), "price": "1"}),
        )
        send(
            "POST",
            "/api/items/",
            headers={"content-type": "application/json"},
            body=json_body({"name": "Nut", "price": "1"}),
        )
        send(
            "POST",
            "/api/items/",
            headers={"authorization": "Token wrong"},
            body=json_body({"name": "Nut", "price": "1"}),
        )
        send("DELETE", "/api/items/", headers=auth)
        send("PATCH", "/api/items/{id}/", headers=auth, body=json_body({"quantity": 1}))
        send("GET", "/api/items/abc/")
        send("GET", "/api/nothing/")
        send("GET", "/api/items")

    answers = assert_same_answers(scenario)

    assert [(answer.status, answer.body["code"]) for answer in answers[1:]] == [
        (400, "invalid"),
        (400, "parse_error"),
        (415, "unsupported_media_type"),
        (413, "request_too_large"),
        (401, "not_authenticated"),
        (401, "authentication_failed"),
        (405, "method_not_allowed"),
        (428, "precondition_required"),
        (404, "not_found"),
        (404, "not_found"),
        (404, "not_found"),
    ]
    assert {answer.headers["content-type"] for answer in answers[1:]} == {
        "application/problem+json"
    }


def test_a_throttled_client_answers_alike_with_retry_after(settings):
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {
        "DEFAULT_THROTTLE_RATES": {"anon": "2/min", "user": None}
    }

    def scenario(send):
        for _ in range(3):
            send("GET", "/api/items/")

    answers = assert_same_answers(scenario)

    assert [answer.status for answer in answers] == [200, 200, 429]
    assert answers[2].body["code"] == "throttled"
    assert answers[2].headers["retry-after"] == "<present>"
