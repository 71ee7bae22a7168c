"""CloudWatch Embedded Metric Format (EMF) records, written as stdout lines.

aws-embedded-metrics builds and serialises each record (`MetricsContext`,
`LogSerializer`). Its `MetricsLogger` is deliberately not used: without
configuration it probes the EC2 metadata endpoint to detect its environment and,
outside Lambda, sends records to a CloudWatch agent over TCP. On Fargate the
awslogs driver ships stdout to CloudWatch Logs, which extracts the metrics from
each EMF line, so no agent and no network call is needed.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_embedded_metrics.logger.metrics_context import MetricsContext
from aws_embedded_metrics.serializers.log_serializer import LogSerializer
from aws_embedded_metrics.unit import Unit

from backend.observability.log_config import METRICS_LOGGER

metrics_logger = logging.getLogger(METRICS_LOGGER)

CACHE_STATUS_METRICS = {"HIT": "CacheHits", "MISS": "CacheMisses", "BYPASS": "CacheBypasses"}


@dataclass(frozen=True)
class RequestMeasurement:
    """What one answered request contributes to the metrics."""

    route: str
    status: int
    duration_ms: float
    db_queries: int
    cache_status: str | None
    request_id: str | None


def status_class(status: int) -> str:
    """Return "2xx", "4xx", ... for an HTTP status code."""
    return f"{status // 100}xx"


def emit(context: MetricsContext) -> None:
    """Write the context's EMF record(s), one JSON document per line."""
    for line in LogSerializer.serialize(context):
        metrics_logger.info(line)


def new_context(*, namespace: str, environment: str) -> MetricsContext:
    context = MetricsContext(namespace=namespace)
    context.set_default_dimensions({"Environment": environment})
    return context


def emit_request_metrics(
    measurement: RequestMeasurement, *, namespace: str, environment: str
) -> None:
    """Latency, count, query count and cache outcome of one request, by route and status class."""
    context = new_context(namespace=namespace, environment=environment)
    status_group = status_class(measurement.status)
    context.put_dimensions({"Route": measurement.route, "StatusClass": status_group})
    context.put_dimensions({"StatusClass": status_group})
    context.put_metric("Latency", measurement.duration_ms, Unit.MILLISECONDS.value)
    context.put_metric("Requests", 1, Unit.COUNT.value)
    context.put_metric("DatabaseQueries", measurement.db_queries, Unit.COUNT.value)
    if metric := CACHE_STATUS_METRICS.get(measurement.cache_status or ""):
        context.put_metric(metric, 1, Unit.COUNT.value)
    context.set_property("request_id", measurement.request_id)
    emit(context)


class CacheCounterReporter:
    """Emit the cache engine's process-wide counters as deltas, at most once per interval.

    `stats` returns counters that only grow (hit, miss, fill, stale_fill_rejected,
    bypass, error); each record carries what changed since the previous one, so
    CloudWatch can sum the records of every process and task.
    """

    def __init__(
        self,
        stats: Callable[[], dict[str, int]],
        *,
        interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stats = stats
        self.interval_seconds = interval_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._previous: dict[str, int] = {}
        self._last_emitted = float("-inf")

    def maybe_emit(self, *, namespace: str, environment: str) -> bool:
        """Emit when the interval has passed since the last record; return whether it did."""
        with self._lock:
            now = self.clock()
            if now - self._last_emitted < self.interval_seconds:
                return False
            self._last_emitted = now
            current = dict(self.stats())
            deltas = {name: value - self._previous.get(name, 0) for name, value in current.items()}
            self._previous = current
        context = new_context(namespace=namespace, environment=environment)
        for name, delta in sorted(deltas.items()):
            context.put_metric(cache_counter_metric(name), delta, Unit.COUNT.value)
        emit(context)
        return True


def cache_counter_metric(counter: str) -> str:
    """Return the metric name of a counter: stale_fill_rejected -> CacheEngineStaleFillRejected."""
    return "CacheEngine" + "".join(part.title() for part in counter.split("_"))
