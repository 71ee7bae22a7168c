"""Instructions per request, counted by valgrind's callgrind: repeatable where time is not.

Runs the WSGI application in-process, as bench/hit_path_cpu.py does, under callgrind:
WARMUP requests, then COUNTED more between two calls of `os.getppid()`, before each of
which callgrind writes its counts (`--dump-before=getppid`; nothing else in the process
calls it). The second dump holds exactly the counted requests: the instructions they
cost in this process's user space. Not the kernel's work, not Redis's or PostgreSQL's,
and not a time: but the same count on a busy machine as on an idle one, so a change of a
few microseconds shows here when `make bench`'s noise hides it.

Everything runs in production's configuration: an access line per request (written to
/dev/null), EMF metrics, the anonymous throttle at a rate no request reaches. The second
table takes one layer away at a time and prints what a cache hit costs less without it.
Run with `make bench-instructions` after `make bench` has seeded the database.
"""

import contextlib
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP, COUNTED = 100, 500
ITEM = "/api/items/1/"
PRODUCTION = {
    "LOG_LEVEL": "INFO",
    "METRICS_ENABLED": "true",
    # The flush thread would wake at random inside the counted requests.
    "METRICS_FLUSH_INTERVAL_SECONDS": "3600",
    "API_THROTTLE_ANON_RATE": "100000000/min",
}
ROWS = {
    "outermost answer (/healthz, the first middleware)": ("/healthz", {}),
    "floor view (same middleware)": ("/bench/floor/1/", {}),
    "cached item read (anonymous)": (ITEM, {}),
    "uncached item read (cache disabled)": (ITEM, {"CACHE_ENABLED": "false"}),
}


def without(*middleware: str) -> dict:
    return {"BENCH_WITHOUT_MIDDLEWARE": ",".join(middleware)}


# What a hit costs less without each layer. Sessions and authentication stay: without
# `request.user` the anonymous read shortcut is not taken.
LAYERS = {
    "request id (RequestIdMiddleware)": without(
        "backend.observability.request_id.RequestIdMiddleware"
    ),
    "access line (JSON log record)": {"LOG_LEVEL": "WARNING"},
    "metrics (EMF aggregation)": {"METRICS_ENABLED": "false"},
    "security headers (SecurityMiddleware, XFrameOptionsMiddleware)": without(
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ),
    "static files (WhiteNoiseMiddleware)": without("whitenoise.middleware.WhiteNoiseMiddleware"),
    "CommonMiddleware": without("django.middleware.common.CommonMiddleware"),
    "CSRF (CsrfViewMiddleware)": without("django.middleware.csrf.CsrfViewMiddleware"),
    "messages (LazyMessageMiddleware)": without("backend.lazy_messages.LazyMessageMiddleware"),
    "login lockout (AxesMiddleware)": without("axes.middleware.AxesMiddleware"),
    "anonymous throttle": {"API_THROTTLE_ANON_RATE": ""},
    "cache read (its Redis round trip with the throttle's count, unpacking)": {
        "BENCH_READ_GIVEN": "1"
    },
}


def collected(path: str, environment: dict) -> int:
    """Instructions callgrind counted for COUNTED requests to `path` in a child process."""
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--dump-before=getppid",
                f"--callgrind-out-file={directory}/counts",
                sys.executable,
                __file__,
                path,
            ],
            env={**os.environ, **PRODUCTION, **environment, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL,  # the access lines
            stderr=subprocess.PIPE,
            check=True,
        )
        counted = Path(directory, "counts.2").read_text()  # .1 ends at the first getppid
    return int(re.search(r"^summary: (\d+)", counted, re.MULTILINE).group(1))


def serve(path: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.given_read import read_given
    from bench.hit_path_cpu import get  # sets the environment up, then Django

    for _ in range(WARMUP):
        assert get(path) == "200 OK"
    given = contextlib.nullcontext()
    if os.environ.get("BENCH_READ_GIVEN"):
        from items.cache import read_item

        answer = read_item(1)
        given = read_given(lambda item_id: answer)
    with given:
        # As gunicorn.conf.py's post_worker_init: no full collection walks the warm heap.
        gc.freeze()
        os.getppid()
        for _ in range(COUNTED):
            assert get(path) == "200 OK"
        os.getppid()


def per_request(path: str, environment: dict) -> float:
    return collected(path, environment) / COUNTED


def main() -> None:
    counts = {}
    print("| what | instructions per request |")
    print("|---|---:|")
    for name, (path, environment) in ROWS.items():
        counts[name] = per_request(path, environment)
        print(f"| {name} | {counts[name]:,.0f} |", flush=True)
    hit = counts["cached item read (anonymous)"]
    outermost = counts["outermost answer (/healthz, the first middleware)"]
    print()
    print("| layer | a cache hit's instructions it costs | share of the hit |")
    print("|---|---:|---:|")
    accounted = 0.0
    for name, environment in LAYERS.items():
        cost = hit - per_request(ITEM, environment)
        accounted += cost
        print(f"| {name} | {cost:,.0f} | {cost / hit:.1%} |", flush=True)
    rest = hit - outermost - accounted
    print(
        f"| the rest: URL routing, sessions and authentication, the view, the response "
        f"| {rest:,.0f} | {rest / hit:.1%} |"
    )
    print(
        f"| what /healthz costs too (WSGI, request and response objects) | {outermost:,.0f} "
        f"| {outermost / hit:.1%} |"
    )


if __name__ == "__main__":
    if len(sys.argv) == 2:
        serve(sys.argv[1])
    else:
        main()
