"""One access line for every request the application answers, and its metrics."""

import logging
import time
from contextlib import ExitStack
from functools import cache

from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from backend.observability.log_config import ACCESS_LOGGER
from backend.observability.metrics import (
    CacheCounterReporter,
    RequestMeasurement,
    RequestMetrics,
    run_every,
)

access_logger = logging.getLogger(ACCESS_LOGGER)

CACHE_STATUS_HEADER = "X-Cache"
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})


class QueryCounter:
    """A database execute wrapper that counts the statements it sees."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def route_of(request) -> str:
    """A bounded name for what was asked: the method and the matched URL name."""
    method = request.method if request.method in KNOWN_METHODS else "OTHER"
    match = getattr(request, "resolver_match", None)
    return f"{method} {match.view_name if match else 'unmatched'}"


def user_id_of(request) -> int | None:
    user = getattr(request, "user", None)
    return user.pk if user is not None and user.is_authenticated else None


@cache
def request_metrics() -> RequestMetrics:
    """This process's request metrics; `flush_metrics` runs every `METRICS_FLUSH_INTERVAL` s."""
    metrics = RequestMetrics(
        namespace=settings.METRICS_NAMESPACE, environment=settings.METRICS_ENVIRONMENT
    )
    run_every(settings.METRICS_FLUSH_INTERVAL, flush_metrics)
    return metrics


def flush_metrics() -> None:
    """Write the request metrics not yet written, and the cache engine's counters when due.

    Runs off the request path (and as a gunicorn worker exits); does nothing in a process
    that has not measured a request.
    """
    if not request_metrics.cache_info().currsize:
        return
    request_metrics().flush()
    if reporter := cache_counter_reporter():
        reporter.maybe_emit(
            namespace=settings.METRICS_NAMESPACE, environment=settings.METRICS_ENVIRONMENT
        )


@cache
def cache_counter_reporter() -> CacheCounterReporter | None:
    """The reporter of the cache engine's counters, or None when there is no engine."""
    try:
        stats = import_string(settings.METRICS_CACHE_STATS)
    except ImportError:
        return None
    return CacheCounterReporter(stats, interval_seconds=settings.METRICS_CACHE_STATS_INTERVAL)


class AccessLogMiddleware:
    """Measure each request; log its access line and add it to the request metrics.

    Sits inside `RequestIdMiddleware`, so the access line carries the request id. The cache
    status comes from the `X-Cache` response header the cache layer sets.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        queries = QueryCounter()
        started = time.perf_counter()
        with ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(queries))
            response = self.get_response(request)
        measurement = RequestMeasurement(
            route=route_of(request),
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            db_queries=queries.count,
            cache_status=response.get(CACHE_STATUS_HEADER),
        )
        self.log_access(request, measurement)
        if settings.METRICS_ENABLED:
            request_metrics().add(measurement)
        return response

    def log_access(self, request, measurement: RequestMeasurement) -> None:
        access_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            measurement.status,
            extra={
                "method": request.method,
                "path": request.path,
                "route": measurement.route,
                "status": measurement.status,
                "duration_ms": measurement.duration_ms,
                "cache": measurement.cache_status,
                "user_id": user_id_of(request),
                "db_queries": measurement.db_queries,
            },
        )
