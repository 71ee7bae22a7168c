"""The circuit breaker that keeps a process from paying the cache server's timeout
on every request while the server is away; one per process, shared by all its users."""

import functools
import threading
import time
from collections.abc import Callable

from django.conf import settings
from redis.exceptions import RedisError

# What a Redis call raises when the server cannot be reached or answers with an error.
STORE_ERRORS = (RedisError, OSError)


class CacheUnavailable(Exception):
    """The store failed (the error is the cause) or the circuit breaker is open."""


class NotAnOutage(Exception):
    """Base of errors that fail one call but show the store reachable.

    `CircuitBreaker.call` raises CacheUnavailable for them and counts them as the store
    answering: a probe that meets one closes the breaker rather than leaving it open.
    """


class CircuitBreaker:
    """Closed until `threshold` failures in a row; then open for `cooldown` seconds.

    After the cool-down one caller at a time probes the store; its success closes
    the breaker, its failure opens it again.
    """

    def __init__(self, threshold: int, cooldown: float):
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def call(self, operation: Callable, *args, errors: tuple = STORE_ERRORS, even_if_open=False):
        """Return `operation(*args)`, recording its success or failure.

        Raises CacheUnavailable without calling `operation` while the breaker is
        open (unless `even_if_open`: a call too important to skip, whose success
        closes it), and from the error when `operation` raises one of `errors`
        (counted as a failure, or as a success if it is a NotAnOutage). Other errors
        pass through uncounted.
        """
        # Closed and without failures is every cache hit's case: it makes no other call.
        if self._opened_at is not None and not even_if_open and not self.allow():
            raise CacheUnavailable("circuit open")
        try:
            result = operation(*args)
        except errors as error:
            if isinstance(error, NotAnOutage):
                self.record_success()
            else:
                self.record_failure()
            raise CacheUnavailable(str(error)) from error
        except BaseException:
            # Not the store's fault, so not counted; but a probe that ends this way must
            # let the next caller probe, or the breaker would stay open for good.
            self._end_probe()
            raise
        if self._failures or self._opened_at is not None:
            self.record_success()
        return result

    def allow(self) -> bool:
        if self._opened_at is None:  # the common case, read without the lock
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or time.monotonic() - self._opened_at < self.cooldown:
                return False
            self._probing = True
            return True

    def record_success(self) -> None:
        if self._failures == 0 and self._opened_at is None:
            return
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def _end_probe(self) -> None:
        if self._probing:
            with self._lock:
                self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._opened_at is not None or self._failures >= self.threshold:
                self._opened_at = time.monotonic()


@functools.cache
def redis_breaker() -> CircuitBreaker:
    """The process's one circuit breaker for the cache server, shared by all its users."""
    return CircuitBreaker(settings.CACHE_BREAKER_THRESHOLD, settings.CACHE_BREAKER_COOLDOWN)
