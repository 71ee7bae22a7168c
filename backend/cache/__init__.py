"""The generic read-through cache: one job per module.

- `engine`: `ReadThroughCache`, get-or-fill and invalidate for one namespace.
- `redis_store` and `lua/`: the protocol on Redis, its writes as Lua scripts.
- `local_store`: the same protocol in process memory, for running without Redis.
- `breaker`: the per-process circuit breaker every user of the cache server shares.
- `entries`: the records the engine and the stores pass between them.
- `stats`: process-wide counters for the metrics (`METRICS_CACHE_STATS`).
"""

from backend.cache.breaker import CacheUnavailable, CircuitBreaker, redis_breaker
from backend.cache.engine import (
    BYPASS,
    HIT,
    MISS,
    LimitExceeded,
    Read,
    ReadThroughCache,
    default_store,
    drop_cache_connections,
    settle_caches,
    store_is_shared,
)
from backend.cache.entries import DELETED, Counter, Entry, Stored
from backend.cache.local_store import LocalStore
from backend.cache.redis_store import RedisStore, ServerChanged
from backend.cache.stats import cache_stats

__all__ = [
    "BYPASS",
    "DELETED",
    "HIT",
    "MISS",
    "CacheUnavailable",
    "CircuitBreaker",
    "Counter",
    "Entry",
    "LimitExceeded",
    "LocalStore",
    "Read",
    "ReadThroughCache",
    "RedisStore",
    "ServerChanged",
    "Stored",
    "cache_stats",
    "default_store",
    "drop_cache_connections",
    "redis_breaker",
    "settle_caches",
    "store_is_shared",
]
