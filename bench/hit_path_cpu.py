"""Where a cache hit's CPU goes, in microseconds per request, measured in-process.

Calls the WSGI application directly (no HTTP server, no load generator), so the
figures are CPU time of this process only: the framework floor, an anonymous
cached item read, the cache read and a bare Redis GET on their own, the item
read with the cache read's answer given (without Redis, and after a 50 µs sleep:
what leaving the CPU while Redis answers costs by itself), and a full garbage
collection before and after `gc.freeze()` (what gunicorn.conf.py's
post_worker_init saves). Run with `make bench-cpu` after `make bench` has seeded
the database.
"""

import contextlib
import gc
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.update(
    DJANGO_SETTINGS_MODULE="backend.settings",
    DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-" + "x" * 40),
    DJANGO_ALLOWED_HOSTS="127.0.0.1",
    DATABASE_URL=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/items_bench"
    ),
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    CACHE_KEY_PREFIX=f"bench-cpu-{time.time_ns()}",
)
# Off unless the caller says otherwise (bench/instructions.py measures production's values).
os.environ.setdefault("API_THROTTLE_ANON_RATE", "")
os.environ.setdefault("METRICS_ENABLED", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.cpu import cpu_microseconds
from bench.given_read import read_given
from bench.wsgi import application  # (after the environment is set)

ROUNDS, CALLS = 9, 1000


def get(path: str) -> str:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "REMOTE_ADDR": "127.0.0.1",  # the client address a throttle counts by
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "*/*",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    status = []
    body = application(environ, lambda line, headers: status.append(line))
    b"".join(body)
    body.close()
    return status[0]


def main() -> None:
    from django_redis import get_redis_connection

    from items.cache import read_item

    for _ in range(2):  # a miss that fills, then a hit
        assert get("/api/items/1/") == "200 OK"
    redis = get_redis_connection()
    found = read_item(1)

    def found_after_a_wait(item_id):
        time.sleep(0.00005)  # off the CPU for 50 µs, as while Redis answers
        return found

    def item_read():
        return get("/api/items/1/")

    no_swap = contextlib.nullcontext()
    rows = {  # what is called, and within what
        "floor view (same middleware)": (lambda: get("/bench/floor/1/"), no_swap),
        "cached item read (anonymous, the shortcut past DRF)": (item_read, no_swap),
        "  of which: the cache read (read_item)": (lambda: read_item(1), no_swap),
        "  of which: one bare Redis GET": (lambda: redis.get("bench-cpu-probe"), no_swap),
        "the same read, read_item's answer given (no Redis)": (
            item_read,
            read_given(lambda item_id: found),
        ),
        "the same, given after a 50 µs sleep": (item_read, read_given(found_after_a_wait)),
    }
    print("| what | CPU µs per call |")
    print("|---|---:|")
    for name, (call, swap) in rows.items():
        with swap:
            print(f"| {name} | {cpu_microseconds(call, rounds=ROUNDS, calls=CALLS):.0f} |")
    # What gunicorn.conf.py's post_worker_init saves: a worker's full collections.
    print(f"| a full garbage collection (gc.collect()) | {full_collection_microseconds():.0f} |")
    gc.freeze()
    print(f"| the same after gc.freeze() | {full_collection_microseconds():.0f} |")
    gc.unfreeze()


def full_collection_microseconds() -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        gc.collect()
        best = min(best, (time.process_time() - started) * 1e6)
    return best


if __name__ == "__main__":
    main()
