"""Instructions per request, counted by valgrind's callgrind: repeatable where time is not.

Runs the WSGI application in-process, as bench/hit_path_cpu.py does, under callgrind
twice per row (WARMUP requests then COUNTED more, and WARMUP alone) and prints the
difference divided by COUNTED: the instructions one request costs in this process's
user space. Not the kernel's work, not Redis's or PostgreSQL's, and not a time: but
the same count on a busy machine as on an idle one, so a change of a few microseconds
shows here when `make bench`'s noise hides it. Run with `make bench-instructions`
after `make bench` has seeded the database.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

WARMUP, COUNTED = 100, 500
ROWS = {
    "floor view (same middleware)": ("/bench/floor/1/", {}),
    "cached item read (anonymous)": ("/api/items/1/", {}),
    # A limit no client reaches: what the anonymous throttle's bookkeeping costs a hit.
    "cached item read, anonymous throttle on": (
        "/api/items/1/",
        {"BENCH_THROTTLE_ANON_RATE": "100000000/min"},
    ),
    "uncached item read (cache disabled)": ("/api/items/1/", {"CACHE_ENABLED": "false"}),
}


def collected(path: str, requests: int, environment: dict) -> int:
    """Instructions callgrind counted in a child process serving `requests` requests."""
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            path,
            str(requests),
        ],
        env={**os.environ, **environment, "PYTHONHASHSEED": "0"},  # the same dict layouts
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def serve(path: str, requests: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.hit_path_cpu import get  # sets the environment up, then Django

    for _ in range(requests):
        assert get(path) == "200 OK"


def main() -> None:
    print("| what | instructions per request |")
    print("|---|---:|")
    for name, (path, environment) in ROWS.items():
        base = collected(path, WARMUP, environment)
        total = collected(path, WARMUP + COUNTED, environment)
        print(f"| {name} | {(total - base) / COUNTED:,.0f} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        serve(sys.argv[1], int(sys.argv[2]))
    else:
        main()
