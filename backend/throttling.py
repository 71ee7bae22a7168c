"""Request rate limits kept in the shared cache, so they hold across processes and tasks.

Each client has one counter per fixed window (a minute for `N/min`): a request costs one
increment, one cache round trip. DRF's own throttles keep a list of every request's time
and read and rewrite it on each request, two round trips and a value as long as the rate.
The price of the counter: across a window boundary a client can send up to twice the rate
in less than one window.

When the cache cannot be reached the limits fail open: an outage of Redis must not turn
into an outage of the API. The first failure and the recovery are logged once each.
"""

import logging
import math

from django.core.cache import caches
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

from backend.cache import redis_breaker

logger = logging.getLogger(__name__)

CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)


class _FixedWindow:
    """Throttle mixin: one counter per client and window; fail open without the cache."""

    failing_open = False  # shared by every throttle in the process

    @property
    def cache(self):
        # Counters of their own, whose keys outlive a release (backend/connections.py).
        return caches["throttle"]

    def get_rate(self) -> str | None:
        # Read at each request, not frozen at import as DRF does, so settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        # The cache engine's breaker: while it is open, no request pays Redis's timeout.
        breaker = redis_breaker()
        if not breaker.allow():
            return self._fail_open()
        self.now = self.timer()
        window = int(self.now // self.duration)
        try:
            allowed = self._count(f"{self.key}:{window}") <= self.num_requests
        except CACHE_ERRORS:
            breaker.record_failure()
            return self._fail_open()
        breaker.record_success()
        if _FixedWindow.failing_open:
            logger.warning("Throttling is back on: the cache answers again")
            _FixedWindow.failing_open = False
        return allowed

    def _count(self, key: str) -> int:
        """Add this request to the window's counter and return the count."""
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request: no counter yet
            if self.cache.add(key, 1, timeout=self.duration + 1):
                return 1
            return self.cache.incr(key)  # another process created it first

    @staticmethod
    def _fail_open() -> bool:
        if not _FixedWindow.failing_open:
            logger.warning("Throttling is off: the cache is unavailable")
            _FixedWindow.failing_open = True
        return True

    def wait(self) -> int:
        """Seconds until the window ends, rounded up so `Retry-After` is never 0."""
        return max(1, math.ceil(self.duration - self.now % self.duration))


def client_address(request) -> str | None:
    """The client's address by the throttles' rule, for limits kept outside DRF.

    The socket's address, or with `API_NUM_PROXIES` = n the n-th X-Forwarded-For
    entry from the right: the one the nearest trusted proxy appended, which the
    client cannot choose. django-axes counts failed admin logins by it.
    """
    return throttling.BaseThrottle().get_ident(request)


class AnonRateThrottle(_FixedWindow, throttling.AnonRateThrottle):
    """Limits anonymous clients per address (`API_THROTTLE_ANON_RATE`)."""


class UserRateThrottle(_FixedWindow, throttling.UserRateThrottle):
    """Limits each authenticated user (`API_THROTTLE_USER_RATE`)."""

    def get_cache_key(self, request, view) -> str | None:
        # DRF would also count anonymous requests here; AnonRateThrottle covers those.
        if not request.user or not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)
