"""Request rate limits kept in the shared cache, so they hold across processes and tasks.

When the cache cannot be reached the limits fail open: an outage of Redis must not turn
into an outage of the API. The first failure and the recovery are logged once each.
"""

import logging
import math

from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

from backend.cache import redis_breaker

logger = logging.getLogger(__name__)

CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)


class _FailOpen:
    """Throttle mixin: allow the request when the cache is unavailable."""

    failing_open = False  # shared by every throttle in the process

    def get_rate(self) -> str | None:
        # Read at each request, not frozen at import as DRF does, so settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None or self.get_cache_key(request, view) is None:
            return True
        # The cache engine's breaker: while it is open, no request pays Redis's timeout.
        breaker = redis_breaker()
        if not breaker.allow():
            return self._fail_open()
        try:
            allowed = super().allow_request(request, view)
        except CACHE_ERRORS:
            breaker.record_failure()
            return self._fail_open()
        breaker.record_success()
        if _FailOpen.failing_open:
            logger.warning("Throttling is back on: the cache answers again")
            _FailOpen.failing_open = False
        return allowed

    @staticmethod
    def _fail_open() -> bool:
        if not _FailOpen.failing_open:
            logger.warning("Throttling is off: the cache is unavailable")
            _FailOpen.failing_open = True
        return True

    def wait(self) -> float | None:
        """Seconds until a request would pass, rounded up so `Retry-After` is never 0."""
        seconds = super().wait()
        return None if seconds is None else max(1, math.ceil(seconds))


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    """Limits anonymous clients per address (`API_THROTTLE_ANON_RATE`)."""


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    """Limits each authenticated user (`API_THROTTLE_USER_RATE`)."""

    def get_cache_key(self, request, view) -> str | None:
        # DRF would also count anonymous requests here; AnonRateThrottle covers those.
        if not request.user or not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)
