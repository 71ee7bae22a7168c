"""`make bench`'s Lambda rows: the handler's cold start and its warm cost per invocation.

Cold start: a fresh Python process imports `backend.lambda_handler` (Django, the
application, its middleware) and answers its first event, a cached item read; the
median of COLD_STARTS processes. Lambda's own part (starting the sandbox, the runtime
fetching the event) is not in it.

Warm: CPU time per invocation of the same cached read given as an API Gateway HTTP API
event to the handler, against the WSGI application called directly with the environ a
server would give it (gunicorn's parsing not included either side), in one process;
the fastest of ROUNDS rounds. The difference is what apig-wsgi and the handler add.
Then the wall time of that read, and of the same read as the first after a pause of a
minute or more, when the handler opens its connections anew (median of 50 each).

Both sides log their access line and gather their metrics, as production does; the
handler also writes its EMF record on every invocation (docs/lambda.md), so a third row
gives the adapter alone, without that write.

Runs against the database `make bench` seeds (BENCH_DATABASE_URL, migrated here if
new) and creates the item it reads when it is missing.
"""

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLD_STARTS = int(os.environ.get("BENCH_LAMBDA_COLD_STARTS", "7"))
ROUNDS, CALLS = 9, 1000
RECONNECT_SAMPLES = 50
HOST = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "backend.settings",
    "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-" + "x" * 40),
    "DJANGO_ALLOWED_HOSTS": HOST,
    "DATABASE_URL": os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/items_bench"
    ),
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "API_THROTTLE_ANON_RATE": "",
    # As in production: an access line and an EMF record per invocation.
    "LOG_LEVEL": "INFO",
    "METRICS_ENABLED": "true",
}

# Runs in a fresh process: import the handler, answer one event, print the timings.
COLD_START = """
import json, sys, time
started = time.perf_counter()
from backend.lambda_handler import handler
imported = time.perf_counter()
answer = handler(json.loads(sys.argv[1]), None)
answered = time.perf_counter()
assert answer["statusCode"] == 200, answer
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "first_ms": (answered - imported) * 1000}))
"""


def item_event(item_id: int) -> dict:
    path = f"/api/items/{item_id}/"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "host": HOST,
            "accept": "*/*",
            "user-agent": "bench",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "domainName": HOST,
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def item_environ(item_id: int) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/items/{item_id}/",
        "QUERY_STRING": "",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.9",
        "HTTP_HOST": HOST,
        "HTTP_ACCEPT": "*/*",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }


def prepare() -> int:
    """Migrate the bench database if it is new; return the id of an item to read."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=os.environ | ENVIRONMENT,
        check=True,
    )
    os.environ.update(ENVIRONMENT)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from items.models import Item

    item = Item.objects.order_by("pk").first() or Item.objects.create(name="Bench", price=1)
    return item.pk


def cold_starts(item_id: int) -> list[dict]:
    event = json.dumps(item_event(item_id))
    runs = []
    for _ in range(COLD_STARTS):
        finished = subprocess.run(
            [sys.executable, "-c", COLD_START, event],
            cwd=ROOT,
            env=os.environ | ENVIRONMENT,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(finished.stdout.strip().splitlines()[-1]))
    return runs


def warm_costs(item_id: int) -> tuple[float, float, float]:
    """CPU µs per cached read: through the WSGI application, the handler, the adapter alone."""
    from backend.lambda_handler import _answer, handler
    from backend.wsgi import application
    from bench.cpu import cpu_microseconds

    event = item_event(item_id)

    def through_wsgi():
        statuses = []
        body = application(item_environ(item_id), lambda status, headers: statuses.append(status))
        b"".join(body)
        body.close()
        assert statuses[0].startswith("200"), statuses

    def through_handler():
        assert handler(event, None)["statusCode"] == 200

    def through_adapter():
        assert _answer(event, None)["statusCode"] == 200

    through_handler()  # fills the cache: both then measure hits
    with stdout_discarded():  # the log and EMF lines are written, to nowhere
        return tuple(
            cpu_microseconds(call, rounds=ROUNDS, calls=CALLS)
            for call in (through_wsgi, through_handler, through_adapter)
        )


@contextlib.contextmanager
def stdout_discarded():
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def reconnect_cost(item_id: int) -> tuple[float, float]:
    """Median wall ms of a cached read, and of one after a pause's reconnection."""
    from backend.lambda_handler import handler, reconnect

    event = item_event(item_id)

    def wall_ms(before) -> float:
        times = []
        for _ in range(RECONNECT_SAMPLES):
            before()
            started = time.perf_counter()
            assert handler(event, None)["statusCode"] == 200
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    with stdout_discarded():
        return wall_ms(lambda: None), wall_ms(reconnect)


def main() -> None:
    item_id = prepare()
    runs = cold_starts(item_id)
    imports = statistics.median(run["import_ms"] for run in runs)
    firsts = statistics.median(run["first_ms"] for run in runs)
    totals = statistics.median(run["import_ms"] + run["first_ms"] for run in runs)
    wsgi_us, handler_us, adapter_us = warm_costs(item_id)
    warm_ms, after_pause_ms = reconnect_cost(item_id)
    print(f"\nLambda (median of {len(runs)} cold starts; warm: fastest of {ROUNDS} rounds)\n")
    print("| row | value |")
    print("|---|---:|")
    print(f"| cold start: import of backend.lambda_handler | {imports:,.0f} ms |")
    print(f"| cold start: first invocation (cached item read) | {firsts:,.1f} ms |")
    print(f"| cold start: import + first invocation | {totals:,.0f} ms |")
    print(f"| warm cached read, WSGI application called directly | {wsgi_us:,.0f} µs CPU |")
    print(f"| warm cached read, Lambda handler (payload 2.0 event) | {handler_us:,.0f} µs CPU |")
    print(f"| warm cached read, adapter alone (no EMF write) | {adapter_us:,.0f} µs CPU |")
    print(f"| handler / WSGI | {handler_us / wsgi_us:.2f}x ({handler_us - wsgi_us:+,.0f} µs) |")
    print(f"| adapter / WSGI | {adapter_us / wsgi_us:.2f}x ({adapter_us - wsgi_us:+,.0f} µs) |")
    print(f"| warm cached read, wall time | {warm_ms:,.2f} ms |")
    print(f"| same, first after a pause (connections opened anew) | {after_pause_ms:,.2f} ms |")


if __name__ == "__main__":
    main()
