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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_embedded_metrics.logger.metrics_context import MetricsContext
from aws_embedded_metrics.serializers.log_serializer import LogSerializer
from aws_embedded_metrics.unit import Unit

from backend.observability.log_config import METRICS_LOGGER

metrics_logger = logging.getLogger(METRICS_LOGGER)
logger = logging.getLogger(__name__)

CACHE_STATUS_METRICS = {"HIT": "CacheHits", "MISS": "CacheMisses", "BYPASS": "CacheBypasses"}


@dataclass(frozen=True)
class RequestMeasurement:
    """What one answered request contributes to the metrics."""

    route: str
    status: int
    duration_ms: float
    db_queries: int
    cache_status: str | None


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


@dataclass
class _RouteTotals:
    latencies_ms: list[float] = field(default_factory=list)
    db_queries: list[int] = field(default_factory=list)
    cache_outcomes: Counter = field(default_factory=Counter)


class RequestMetrics:
    """Requests measured in this process, written as EMF records once per interval.

    One record per route and status class: every request's latency and query count
    is one of its values (the serializer starts a new line past CloudWatch's 100 values
    per metric), and its counts are sums. A record per request would cost each request
    about 140 µs of CPU, a fifth of a minimal request (docs/operations.md).
    """

    def __init__(self, *, namespace: str, environment: str):
        self.namespace = namespace
        self.environment = environment
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _RouteTotals] = {}

    def add(self, measurement: RequestMeasurement) -> None:
        key = (measurement.route, status_class(measurement.status))
        with self._lock:
            totals = self._pending.get(key)
            if totals is None:
                totals = self._pending[key] = _RouteTotals()
            totals.latencies_ms.append(measurement.duration_ms)
            totals.db_queries.append(measurement.db_queries)
            if measurement.cache_status in CACHE_STATUS_METRICS:
                totals.cache_outcomes[measurement.cache_status] += 1

    def flush(self) -> None:
        """Write what was measured since the last flush (nothing when there was nothing)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for (route, status_group), totals in pending.items():
            context = new_context(namespace=self.namespace, environment=self.environment)
            context.put_dimensions({"Route": route, "StatusClass": status_group})
            context.put_dimensions({"StatusClass": status_group})
            for latency in totals.latencies_ms:
                context.put_metric("Latency", latency, Unit.MILLISECONDS.value)
            context.put_metric("Requests", len(totals.latencies_ms), Unit.COUNT.value)
            for queries in totals.db_queries:
                context.put_metric("DatabaseQueries", queries, Unit.COUNT.value)
            for outcome, count in sorted(totals.cache_outcomes.items()):
                context.put_metric(CACHE_STATUS_METRICS[outcome], count, Unit.COUNT.value)
            emit(context)


def run_every(interval_seconds: float, job: Callable[[], None]) -> threading.Thread:
    """Run `job` every interval from a daemon thread, so quiet periods report too."""

    def run() -> None:
        while True:
            time.sleep(interval_seconds)
            try:
                job()
            except Exception:  # the thread must outlive one bad record
                logger.exception("Writing the metrics failed")

    thread = threading.Thread(target=run, name="metrics", daemon=True)
    thread.start()
    return thread


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
