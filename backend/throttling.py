"""Request rate limits kept in the shared cache, so they hold across processes and tasks.

Each client has one counter per fixed window (a minute for `N/min`): a request costs one
increment, one cache round trip. An anonymous JSON read of one item pays no round trip of
its own: its increments travel in the item cache's read (`read_counters`, used by
`items.views.ItemViewSet`), on the same keys. DRF's own throttles keep a list of every
request's time and read and rewrite it on each request, two round trips and a value as long
as the rate.
The price of the counter: across a window boundary a client can send up to twice the rate
in less than one window.

When the cache cannot be reached the limits fail open: an outage of Redis must not turn
into an outage of the API. The first failure and the recovery are logged once each.
"""

import functools
import logging
import math

from django.core.cache import caches
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

from backend.cache import CacheUnavailable, Counter, redis_breaker

logger = logging.getLogger(__name__)

CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)


class _FixedWindow:
    """Throttle mixin: one counter per client and window; fail open without the cache."""

    failing_open = False  # shared by every throttle in the process
    # Counters of their own, whose keys outlive a release (backend/connections.py).
    cache_alias = "throttle"

    @property
    def cache(self):
        return caches[self.cache_alias]

    def get_ident(self, request) -> str | None:
        return client_address(request)

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
        try:
            allowed = redis_breaker().call(self._within_rate, errors=CACHE_ERRORS)
        except CacheUnavailable:
            return self._fail_open()
        self._back_on()
        return allowed

    def window_counter(self, request, view) -> Counter | None:
        """What `allow_request` would count for this request, for a cache read to count.

        None when this throttle does not limit the request (no rate, or a client it
        does not count). The key, the window and a new counter's lifetime are
        `allow_request`'s, so both ways count a client in one counter.
        """
        if self.rate is None:
            return None
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return None
        self.now = self.timer()
        key = self.cache.make_key(self._window_key())
        return Counter(key, ttl_ms=self._lifetime * 1000, limit=self.num_requests)

    def _within_rate(self) -> bool:
        """Count this request in the current window; whether the window is within the rate."""
        self.now = self.timer()
        return self._count(self._window_key()) <= self.num_requests

    def _window_key(self) -> str:
        return f"{self.key}:{int(self.now // self.duration)}"

    @property
    def _lifetime(self) -> int:
        """Seconds a window's counter lives: past its window's end, wherever it started."""
        return self.duration + 1

    def _count(self, key: str) -> int:
        """Add this request to the window's counter and return the count."""
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request: no counter yet
            if self.cache.add(key, 1, timeout=self._lifetime):
                return 1
            return self.cache.incr(key)  # another process created it first

    @staticmethod
    def _fail_open() -> bool:
        if not _FixedWindow.failing_open:
            logger.warning("Throttling is off: the cache is unavailable")
            _FixedWindow.failing_open = True
        return True

    @staticmethod
    def _back_on() -> None:
        if _FixedWindow.failing_open:
            logger.warning("Throttling is back on: the cache answers again")
            _FixedWindow.failing_open = False

    def wait(self) -> int:
        """Seconds until the window ends, rounded up so `Retry-After` is never 0."""
        return max(1, math.ceil(self.duration - self.now % self.duration))


def read_counters(throttles, request, view, *, counts_in) -> tuple[Counter, ...] | None:
    """The counters `throttles` would count for this request, for a cache read to count
    in its own round trip (`ReadThroughCache.get_or_fill`); empty when none limits it.

    None when a throttle must run its own `allow_request` instead: one that counts
    otherwise than `_FixedWindow` (a class that overrides its counting), or whose
    cache the read cannot count in (`counts_in(cache_alias)` false: the read cache is
    off, or the counters are in this process's memory).
    """
    counters = []
    for throttle in throttles:
        if not _counts_as_fixed_window(type(throttle)):
            return None
        counter = throttle.window_counter(request, view)
        if counter is not None:
            if not counts_in(throttle.cache_alias):
                return None
            counters.append(counter)
    return tuple(counters)


def counted_by_read(counted: bool) -> None:
    """After a read counted `read_counters`' counters, or could not reach the cache.

    Not counted, the throttles fail open, and say so, as `allow_request` does.
    """
    if counted:
        _FixedWindow._back_on()
    else:
        _FixedWindow._fail_open()


@functools.cache
def _counts_as_fixed_window(throttle_class: type) -> bool:
    return issubclass(throttle_class, _FixedWindow) and all(
        getattr(throttle_class, name) is getattr(_FixedWindow, name)
        for name in ("allow_request", "_within_rate", "_count", "_window_key", "_lifetime")
    )


def client_address(request) -> str | None:
    """A client's address by DRF's throttles' rule (`BaseThrottle.get_ident`).

    The socket's address, or with `API_NUM_PROXIES` = n the n-th X-Forwarded-For
    entry from the right: the one the nearest trusted proxy appended, which the
    client cannot choose. The throttles count by it, and django-axes its failed
    admin logins. Read from META: DRF reads `request.headers`, whose first use
    copies every header of the request, which cost a throttled hit more than
    its count in Redis.
    """
    meta = request.META
    forwarded_for = meta.get("HTTP_X_FORWARDED_FOR")
    num_proxies = api_settings.NUM_PROXIES
    if num_proxies is None:  # DRF's rule without a count: the whole header
        return "".join(forwarded_for.split()) if forwarded_for else meta.get("REMOTE_ADDR")
    if num_proxies == 0 or forwarded_for is None:
        return meta.get("REMOTE_ADDR")
    addresses = forwarded_for.split(",")
    return addresses[-min(num_proxies, len(addresses))].strip()


class AnonRateThrottle(_FixedWindow, throttling.AnonRateThrottle):
    """Limits anonymous clients per address (`API_THROTTLE_ANON_RATE`)."""


class UserRateThrottle(_FixedWindow, throttling.UserRateThrottle):
    """Limits each authenticated user (`API_THROTTLE_USER_RATE`)."""

    def get_cache_key(self, request, view) -> str | None:
        # DRF would also count anonymous requests here; AnonRateThrottle covers those.
        if not request.user or not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)
