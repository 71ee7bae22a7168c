"""Liveness (`/healthz`) and readiness (`/readyz`) for the load balancer and the orchestrator.

The load balancer's health checker addresses a task by its private IP, so these
paths are answered by `HealthCheckMiddleware` before anything validates the
`Host` header or redirects to HTTPS; ALLOWED_HOSTS stays as strict as it is.
"""

from http import HTTPStatus

from django.core.cache import caches
from django.db import DatabaseError, connections
from django.http import JsonResponse
from django.urls import resolve
from django.views.decorators.cache import never_cache

from backend.cache import CacheUnavailable, redis_breaker

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"

# Bounds the readiness query; the connection attempt itself is bounded by
# DB_CONNECT_TIMEOUT.
READINESS_STATEMENT_TIMEOUT_MS = 1000
CACHE_PROBE_KEY = "health:probe"


@never_cache
def liveness(request) -> JsonResponse:
    """200 while the process can answer at all; touches no dependency."""
    return JsonResponse({"status": "ok"})


@never_cache
def readiness(request) -> JsonResponse:
    """200 when PostgreSQL answers (the body says if the cache is degraded), else 503."""
    checks = {"database": database_state(), "cache": cache_state()}
    if checks["database"] != "ok":
        return JsonResponse(
            {"status": "unavailable", "checks": checks}, status=HTTPStatus.SERVICE_UNAVAILABLE
        )
    status = "ok" if checks["cache"] == "ok" else "degraded"
    return JsonResponse({"status": status, "checks": checks})


def database_state(alias: str = "default") -> str:
    """Return "ok" when a `SELECT 1` succeeds within the readiness timeout, else "unavailable"."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET statement_timeout = %s", [READINESS_STATEMENT_TIMEOUT_MS])
            cursor.execute("SELECT 1")
            cursor.fetchone()
            if connection.vendor == "postgresql":
                cursor.execute("RESET statement_timeout")
    except DatabaseError:
        # A broken connection must not be reused by the next request.
        connection.close()
        return "unavailable"
    return "ok"


def cache_state(alias: str = "default") -> str:
    """Return "ok" when the cache answers a read, else "degraded" (reads go to the database).

    The read goes through the process's circuit breaker like any other cache call: not
    tried while it is open, counted when it fails, and after the cool-down the probe
    that may close it, even in a worker that answers nothing but readiness.
    """
    try:
        # Each cache backend raises its own errors; any of them means degraded.
        redis_breaker().call(_read_probe, alias, errors=(Exception,))
    except CacheUnavailable:  # failed, or the breaker is open: reads go around the cache
        return "degraded"
    return "ok"


def _read_probe(alias: str) -> None:
    caches[alias].get(CACHE_PROBE_KEY)


class HealthCheckMiddleware:
    """Answer the health paths first, before host validation and HTTPS redirects."""

    health_paths = frozenset({LIVENESS_PATH, READINESS_PATH})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in self.health_paths:
            return resolve(request.path_info).func(request)
        return self.get_response(request)
