"""CPU per request of a write beside a cached and an uncached read, measured in-process.

Calls the WSGI application directly, like bench/hit_path_cpu.py, so the figures are CPU
time of this process only (not PostgreSQL's or Redis's): an anonymous cached item read, the
same read with the cache disabled, and an authenticated PATCH of one field (the update,
its version bump and the cache invalidation after commit). docs/scaling.md turns the
ratios into the cost of a write under load. Needs a migrated database:
`BENCH_DATABASE_URL=... python bench/write_path_cpu.py` (default: make bench's items_bench).
"""

import io
import json
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
    CACHE_KEY_PREFIX=f"bench-write-{time.time_ns()}",
    API_THROTTLE_ANON_RATE="",
    API_THROTTLE_USER_RATE="",
    METRICS_ENABLED="false",
    LOG_LEVEL="WARNING",
)

from bench.cpu import cpu_microseconds
from bench.wsgi import application  # (after the environment is set)

ROUNDS, CALLS = 5, 300


def call(method: str, path: str, *, body: bytes = b"", token: str | None = None) -> str:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "application/json",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Token {token}"
    status = []
    response = application(environ, lambda line, headers: status.append(line))
    b"".join(response)
    response.close()
    return status[0]


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.test import override_settings
    from rest_framework.authtoken.models import Token

    from items.models import Item

    user, _ = get_user_model().objects.get_or_create(username="bench-writer")
    token = Token.objects.get_or_create(user=user)[0].key
    item = Item.objects.create(name="bench write", price="1.00")
    path = f"/api/items/{item.pk}/"
    quantities = iter(range(10**9))

    def write():
        body = json.dumps({"quantity": next(quantities)}).encode()
        return call("PATCH", path, body=body, token=token)

    assert write() == "200 OK"
    assert call("GET", path) == "200 OK"

    def uncached_read():
        with override_settings(CACHE_ENABLED=False):
            return call("GET", path)

    rows = {
        "cached item read (anonymous)": lambda: call("GET", path),
        "uncached item read (cache disabled)": uncached_read,
        "item write (PATCH one field, token)": write,
    }
    measured = {
        name: cpu_microseconds(request, rounds=ROUNDS, calls=CALLS)
        for name, request in rows.items()
    }
    hit = measured["cached item read (anonymous)"]
    print("| what | CPU µs per call | times a cached read |")
    print("|---|---:|---:|")
    for name, microseconds in measured.items():
        print(f"| {name} | {microseconds:.0f} | {microseconds / hit:.2f} |")
    item.delete()


if __name__ == "__main__":
    main()
