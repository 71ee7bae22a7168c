"""Request ids, the JSON access line and the CloudWatch EMF records, in process."""

import json
import logging
import runpy
import socket
import time
from http import HTTPStatus

import pytest
from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from backend.observability import access
from backend.observability.access import AccessLogMiddleware
from backend.observability.metrics import CacheCounterReporter, run_every
from backend.observability.request_id import RequestIdMiddleware, request_id_for

pytestmark = pytest.mark.django_db

gunicorn_config = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))

ACCESS_LINE_FIELDS = {
    "level",
    "logger",
    "message",
    "request_id",
    "timestamp",
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "cache",
    "user_id",
    "db_queries",
}


@pytest.fixture(autouse=True)
def without_cache_engine_counters(settings):
    """Only request records here; the engine's counters have their own tests below."""
    settings.METRICS_CACHE_STATS = "tests.test_observability.no_such_counters"
    access.cache_counter_reporter.cache_clear()
    access.request_metrics.cache_clear()
    yield
    access.cache_counter_reporter.cache_clear()
    access.request_metrics.cache_clear()


def access_lines(json_log) -> list[dict]:
    return [line for line in json_log.lines() if line["logger"] == "backend.access"]


# --- Request ids -------------------------------------------------------------------


def test_a_request_without_an_id_gets_a_generated_one(api_client):
    response = api_client.get("/api/items/")

    assert len(response["X-Request-ID"]) == 32
    assert response["X-Request-ID"] != api_client.get("/api/items/")["X-Request-ID"]


def test_a_well_formed_incoming_id_is_kept(api_client):
    response = api_client.get("/api/items/", HTTP_X_REQUEST_ID="lb-7f3a.trace:42")

    assert response["X-Request-ID"] == "lb-7f3a.trace:42"


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", 'quote"d', "x" * 129, "-starts-with-dash", "new\nline", "é"],
)
def test_a_malformed_incoming_id_is_replaced(incoming):
    replaced = request_id_for(incoming)

    assert replaced != incoming
    assert len(replaced) == 32


def test_the_error_body_carries_the_request_id(api_client):
    response = api_client.get("/api/items/987654/", HTTP_X_REQUEST_ID="client-chosen-id")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["request_id"] == "client-chosen-id"
    assert response["X-Request-ID"] == "client-chosen-id"


def test_every_log_line_of_a_request_carries_its_id(api_client, json_log):
    api_client.get("/api/items/987654/", HTTP_X_REQUEST_ID="one-request")

    lines = json_log.lines()
    assert {line["logger"] for line in lines} == {"django.request", "backend.access"}
    assert {line["request_id"] for line in lines} == {"one-request"}


def test_the_id_is_not_left_behind_after_the_request(api_client, json_log):
    api_client.get("/api/items/", HTTP_X_REQUEST_ID="finished-request")

    logging.getLogger("tests").warning("after the request")

    assert json_log.lines()[-1]["request_id"] is None


# --- The access line ---------------------------------------------------------------


def test_one_access_line_per_request_with_every_field(api_client, item, json_log):
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get("/api/items/?page=1&api_key=not-logged")

    [line] = access_lines(json_log)
    assert set(line) == ACCESS_LINE_FIELDS
    assert line["duration_ms"] > 0
    assert line["timestamp"].endswith("+00:00")
    assert {k: v for k, v in line.items() if k not in ("duration_ms", "timestamp")} == {
        "level": "INFO",
        "logger": "backend.access",
        "message": "GET /api/items/ 200",
        "request_id": response["X-Request-ID"],
        "method": "GET",
        "path": "/api/items/",
        "route": "GET item-list",
        "status": 200,
        "cache": None,
        "user_id": None,
        "db_queries": len(queries),
    }


def test_records_skip_the_fields_no_line_carries(caplog):
    with caplog.at_level(logging.INFO, logger="backend.access"):
        logging.getLogger("backend.access").info("a line")

    [record] = caplog.records
    assert (record.funcName, record.threadName, record.processName) == (
        "(unknown function)",
        None,
        None,
    )


def test_the_access_line_names_the_authenticated_user(auth_client, user, json_log):
    auth_client.post("/api/items/", {"name": "Lamp", "price": "1.00"}, format="json")

    [line] = access_lines(json_log)
    assert (line["route"], line["status"], line["user_id"]) == ("POST item-list", 201, user.pk)


def test_an_unmatched_path_and_an_unknown_method_have_bounded_route_names(api_client, json_log):
    api_client.get("/no-such-page/")
    api_client.generic("BREW", "/api/items/")

    assert [line["route"] for line in access_lines(json_log)] == [
        "GET unmatched",
        "OTHER item-list",
    ]


@pytest.mark.parametrize("cache_status", ["HIT", "MISS", "BYPASS"])
def test_the_cache_status_comes_from_the_x_cache_header(cache_status, json_log):
    def view(request):
        return HttpResponse(headers={"X-Cache": cache_status})

    RequestIdMiddleware(AccessLogMiddleware(view))(RequestFactory().get("/api/items/1/"))

    assert access_lines(json_log)[0]["cache"] == cache_status


# --- Secrets never reach the log ---------------------------------------------------


def test_the_token_the_query_string_and_a_password_never_reach_the_log(
    auth_client, user, json_log, monkeypatch
):
    """Even for an unexpected error, logged by Django with the request attached."""
    from items.views import ItemViewSet

    def explode(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ItemViewSet, "create", explode)
    auth_client.raise_request_exception = False
    token = Token.objects.get(user=user).key

    response = auth_client.post(
        "/api/items/?api_key=query-secret-123",
        {"name": "x", "price": "1.00", "password": "hunter2-password"},
        format="json",
    )

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert {line["logger"] for line in json_log.lines()} == {"django.request", "backend.access"}
    for secret in (token, "query-secret-123", "hunter2-password"):
        assert secret not in json_log.text


# --- EMF metrics -------------------------------------------------------------------


def emf_documents(emf_log) -> list[dict]:
    return emf_log.lines()


def flushed_documents(emf_log) -> list[dict]:
    access.flush_metrics()
    return emf_documents(emf_log)


def measurement(route="GET item-list", status=200, duration_ms=1.5, db_queries=0, cache=None):
    return access.RequestMeasurement(route, status, duration_ms, db_queries, cache)


@override_settings(METRICS_ENABLED=True, METRICS_ENVIRONMENT="test")
def test_requests_are_written_as_one_emf_record_per_route_and_status_class(
    api_client, item, emf_log
):
    with CaptureQueriesContext(connection) as queries:
        api_client.get("/api/items/")
    queries_per_listing = len(queries)  # the next request clears the query log
    api_client.get("/api/items/")
    api_client.get(f"/api/items/{item.pk}/")

    assert emf_documents(emf_log) == []  # nothing is written per request
    listing, detail = flushed_documents(emf_log)
    latencies = listing.pop("Latency")
    timestamp = listing["_aws"].pop("Timestamp")
    assert len(latencies) == 2
    assert all(latency > 0 for latency in latencies)
    assert isinstance(timestamp, int)
    assert (detail["Route"], detail["Requests"], detail["CacheMisses"]) == (
        "GET item-detail",
        1,
        1,
    )
    assert listing == {
        "Environment": "test",
        "Route": "GET item-list",
        "StatusClass": "2xx",
        "Requests": 2,
        "DatabaseQueries": [queries_per_listing] * 2,
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": "ItemsApi",
                    "Dimensions": [
                        ["Environment", "Route", "StatusClass"],
                        ["Environment", "StatusClass"],
                    ],
                    "Metrics": [
                        {"Name": "Latency", "Unit": "Milliseconds"},
                        {"Name": "Requests", "Unit": "Count"},
                        {"Name": "DatabaseQueries", "Unit": "Count"},
                    ],
                }
            ]
        },
    }


@override_settings(METRICS_ENABLED=True)
def test_a_5xx_is_counted_under_its_status_class(auth_client, emf_log, monkeypatch):
    from items.views import ItemViewSet

    monkeypatch.setattr(ItemViewSet, "list", lambda *args, **kwargs: 1 / 0)
    auth_client.raise_request_exception = False

    auth_client.get("/api/items/")

    [record] = flushed_documents(emf_log)
    assert (record["Route"], record["StatusClass"]) == ("GET item-list", "5xx")


@pytest.mark.parametrize(
    ("cache_status", "metric"),
    [("HIT", "CacheHits"), ("MISS", "CacheMisses"), ("BYPASS", "CacheBypasses")],
)
@override_settings(METRICS_ENABLED=True)
def test_the_cache_outcome_is_a_metric(cache_status, metric, emf_log):
    def view(request):
        return HttpResponse(headers={"X-Cache": cache_status})

    RequestIdMiddleware(AccessLogMiddleware(view))(RequestFactory().get("/api/items/1/"))

    [record] = flushed_documents(emf_log)
    names = [m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == ["Latency", "Requests", "DatabaseQueries", metric]
    assert record[metric] == 1


@override_settings(METRICS_ENABLED=False)
def test_metrics_can_be_turned_off(api_client, emf_log, json_log):
    api_client.get("/api/items/")

    assert flushed_documents(emf_log) == []
    assert len(access_lines(json_log)) == 1


@override_settings(METRICS_ENABLED=True)
def test_emitting_metrics_opens_no_network_connection(api_client, emf_log, monkeypatch):
    """No CloudWatch agent, no metadata endpoint: the record is a stdout line."""

    def refuse(sock, address):
        raise AssertionError(f"unexpected connection to {address}")

    api_client.get("/api/items/")  # the database connection is open before the guard
    monkeypatch.setattr(socket.socket, "connect", refuse)

    access.request_metrics().add(measurement())
    access.request_metrics().add(measurement(status=404))

    assert len(flushed_documents(emf_log)) == 2


# --- The cache engine's counters ---------------------------------------------------


class GrowingCounters:
    """Process-wide counters as the cache engine exposes them: they only grow."""

    def __init__(self):
        self.counters = {"hit": 0, "miss": 0, "error": 0, "stale_fill_rejected": 0}

    def __call__(self) -> dict[str, int]:
        return dict(self.counters)


def test_cache_counters_are_emitted_as_deltas_once_per_interval(emf_log):
    counters, now = GrowingCounters(), [0.0]
    reporter = CacheCounterReporter(counters, interval_seconds=60, clock=lambda: now[0])

    counters.counters.update(hit=5, miss=2)
    assert reporter.maybe_emit(namespace="ItemsApi", environment="test")
    counters.counters.update(hit=9, error=1)
    now[0] = 30.0
    assert not reporter.maybe_emit(namespace="ItemsApi", environment="test")
    now[0] = 61.0
    assert reporter.maybe_emit(namespace="ItemsApi", environment="test")

    first, second = emf_documents(emf_log)
    metric_names = ["CacheEngineError", "CacheEngineHit", "CacheEngineMiss"]
    assert {k: first[k] for k in metric_names} == {
        "CacheEngineError": 0,
        "CacheEngineHit": 5,
        "CacheEngineMiss": 2,
    }
    assert {k: second[k] for k in metric_names} == {
        "CacheEngineError": 1,
        "CacheEngineHit": 4,
        "CacheEngineMiss": 0,
    }
    assert second["CacheEngineStaleFillRejected"] == 0
    assert second["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Environment"]]


def engine_counters() -> dict[str, int]:
    return {"hit": 1, "bypass": 2}


@override_settings(
    METRICS_ENABLED=True,
    METRICS_CACHE_STATS="tests.test_observability.engine_counters",
    METRICS_CACHE_STATS_INTERVAL=0,
)
def test_requests_emit_the_cache_engines_counters_when_it_exposes_them(api_client, emf_log):
    api_client.get("/api/items/")

    assert emf_documents(emf_log) == []  # the request path writes nothing
    request_record, engine_record = flushed_documents(emf_log)
    assert request_record["Route"] == "GET item-list"
    assert (engine_record["CacheEngineHit"], engine_record["CacheEngineBypass"]) == (1, 2)


@override_settings(METRICS_CACHE_STATS="backend.no_such_engine.cache_stats")
def test_without_a_cache_engine_there_is_no_counter_reporter():
    assert access.cache_counter_reporter() is None


def test_emf_lines_are_single_json_documents(emf_log):
    access.request_metrics().add(measurement(status=404))
    access.flush_metrics()

    [line] = emf_log.text.splitlines()
    assert json.loads(line)["StatusClass"] == "4xx"


def test_past_100_values_a_record_continues_on_the_next_line_and_counts_once(emf_log):
    for number in range(250):
        access.request_metrics().add(measurement(duration_ms=number, db_queries=1, cache="HIT"))

    records = flushed_documents(emf_log)

    assert [len(record["Latency"]) for record in records] == [100, 100, 50]
    assert sorted(v for record in records for v in record["Latency"]) == list(range(250))
    assert [record.get("Requests") for record in records] == [250, None, None]
    assert [record.get("CacheHits") for record in records] == [250, None, None]


def test_a_flush_with_nothing_measured_writes_nothing(emf_log):
    access.request_metrics().add(measurement())
    access.flush_metrics()
    written = len(emf_documents(emf_log))

    access.flush_metrics()

    assert (written, len(emf_documents(emf_log))) == (1, 1)


def test_a_process_that_measured_nothing_flushes_nothing(emf_log, settings):
    settings.METRICS_CACHE_STATS = "tests.test_observability.engine_counters"

    access.flush_metrics()

    assert emf_log.text == ""


def test_a_background_thread_writes_the_metrics_every_interval(emf_log):
    metrics = access.RequestMetrics(namespace="ItemsApi", environment="test")
    run_every(0.05, metrics.flush)
    metrics.add(measurement())

    deadline = time.monotonic() + 5
    while not emf_log.text and time.monotonic() < deadline:
        time.sleep(0.01)

    [record] = emf_documents(emf_log)
    assert record["Requests"] == 1


def test_a_gunicorn_worker_writes_its_metrics_and_settles_its_caches_as_it_exits(
    emf_log, monkeypatch
):
    settled = []
    monkeypatch.setattr("backend.cache.settle_caches", lambda: settled.append(1))
    access.request_metrics().add(measurement())

    gunicorn_config["worker_exit"](server=None, worker=None)

    assert [record["Requests"] for record in emf_documents(emf_log)] == [1]
    assert settled == [1]


def test_a_refused_host_is_one_access_line_without_its_value(client, json_log):
    """Django would log the Host header and a traceback for each such request."""
    response = client.get("/api/items/", HTTP_HOST="scanner-probe.example")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert [line["status"] for line in access_lines(json_log)] == [400]
    assert {line["logger"] for line in json_log.lines()} == {"backend.access"}
    assert "scanner-probe.example" not in json_log.text
