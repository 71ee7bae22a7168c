"""What every `make bench` script shares: the bench database, gunicorn, wrk and the CPU meter.

Settings come from the environment (BENCH_*), so every script measures the same
configuration: production settings and the production gunicorn.conf.py against
the local PostgreSQL and Redis, driven by wrk on loopback.
"""

import contextlib
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
ITEMS = int(os.environ.get("BENCH_ITEMS", "100000"))
HOT_IDS = int(os.environ.get("BENCH_HOT_IDS", "1000"))
DURATION = os.environ.get("BENCH_DURATION", "10s")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "16")
WORKERS = os.environ.get("BENCH_WORKERS", "2")
ZIPF_S = os.environ.get("BENCH_ZIPF_S", "1.0")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/items_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

UNREACHED_RATE = "100000000/min"
# A round in which the least busy worker did less than half the busiest's work is run again.
BALANCED, RERUNS = 0.5, 2

SEED_SQL = """
TRUNCATE items_item RESTART IDENTITY;
INSERT INTO items_item (name, description, price, quantity, version, created_at, updated_at)
SELECT 'Item ' || n, 'Seeded item number ' || n, (n %% 100000) / 100.0, n %% 50, 1, now(), now()
FROM generate_series(1, %s) AS n;
ANALYZE items_item;
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_database() -> None:
    url = urlsplit(DATABASE_URL)
    name = url.path.lstrip("/")
    admin = psycopg2.connect(DATABASE_URL.replace(url.path, "/postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def service_env(**overrides: str) -> dict:
    return {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        # A fresh prefix: every run starts cold and never reads an older run's entries.
        "CACHE_KEY_PREFIX": f"bench-{time.time_ns()}",
        "WEB_CONCURRENCY": WORKERS,
        # No worker recycling: at the bench's rates each worker reached the production
        # 50,000 requests in round 2, and the restart (about 0.6 s of CPU, cold caches)
        # landed in whichever row ran then, the same rows in every run.
        "GUNICORN_MAX_REQUESTS": "0",
        # Production's throttles, at rates no bench client reaches: every request is
        # counted, none refused.
        "API_THROTTLE_ANON_RATE": UNREACHED_RATE,
        "API_THROTTLE_USER_RATE": UNREACHED_RATE,
        **overrides,
    }


def require_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package)")


def seed(items: int = ITEMS) -> None:
    """Create and migrate the bench database, then fill it with `items` rows."""
    print(f"seeding {items:,} items into {DATABASE_URL} ...", flush=True)
    create_database()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=service_env(LOG_LEVEL="WARNING"),  # not the cache generation's INFO line
        check=True,
    )
    connection = psycopg2.connect(DATABASE_URL)
    with connection, connection.cursor() as cursor:
        cursor.execute(SEED_SQL, [items])
    connection.close()


class Server:
    """gunicorn serving bench.wsgi with the service's own gunicorn.conf.py."""

    def __init__(
        self, wsgi: str = "bench.wsgi:application", output: Path | None = None, **env: str
    ):
        """`output`: a file for gunicorn's and the service's log lines (else discarded)."""
        self.port = free_port()
        command = [
            # The interpreter's own (a virtualenv's bin/ need not be on PATH), else PATH's.
            shutil.which("gunicorn", path=str(Path(sys.executable).parent))
            or shutil.which("gunicorn")
            or "gunicorn",
            wsgi,
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        with open(output or os.devnull, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=service_env(PORT=str(self.port), **env),
                stdout=log,
                stderr=log,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/api/items/1/", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn did not serve on {self.url} within 30 s")

    def warm(self, ids: int) -> None:
        """Read each of the first `ids` items once, so a hot scenario starts all hits."""
        for item_id in range(1, ids + 1):
            urllib.request.urlopen(f"{self.url}/api/items/{item_id}/", timeout=5).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exception) -> None:
        self.stop()


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# What reading /proc/<pid>/ raises for a process that exited: before the open, or during the read.
PROCESS_GONE = (FileNotFoundError, ProcessLookupError)


def cpu_seconds(pid: int) -> float:
    """CPU a process used, plus what its exited children used (once it waited for them)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(field) for field in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS_PER_SECOND


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children, live or exited (gunicorn recycles workers)."""
    total = cpu_seconds(pid)
    for child in children(pid):
        # One that exited just now is counted once its parent has waited for it.
        with contextlib.suppress(*PROCESS_GONE):
            total += cpu_seconds(child)
    return total


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def resident_mib(pid: int) -> float:
    """A process's resident memory (VmRSS), in MiB."""
    found = re.search(r"^VmRSS:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(found.group(1)) / 1024


def local_pid(pid: int, name: str) -> int | None:
    """The pid when that process runs on this machine under that name, else None."""
    comm = Path(f"/proc/{pid}/comm")
    return pid if comm.exists() and name in comm.read_text() else None


def redis_server_pid() -> int | None:
    return local_pid(redis.Redis.from_url(REDIS_URL).info("server")["process_id"], "redis")


def postmaster_pid() -> int | None:
    """PostgreSQL's main process: the parent of this connection's backend, when local."""
    connection = psycopg2.connect(DATABASE_URL)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = local_pid(cursor.fetchone()[0], "postgres")
            if backend is None:
                return None
            return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    finally:
        connection.close()


class CpuMeter:
    """CPU seconds used by the service, Redis, PostgreSQL and wrk between two readings."""

    def __init__(self):
        self.pids = {"redis": redis_server_pid(), "postgres": postmaster_pid()}

    def read(self, server_pid: int) -> dict[str, float | None]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once waited for
        pids = {"service": server_pid, **self.pids}
        return {
            **{name: tree_cpu_seconds(pid) if pid else None for name, pid in pids.items()},
            "wrk": children.ru_utime + children.ru_stime,
        }


def parse_duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measured_wrk(
    meter: CpuMeter, server: "Server", url: str, script, timeout: str | None = None, **env: str
) -> dict:
    """A wrk run, with the CPU each process spent per request during it, and how evenly
    the workers shared it (`worker_balance`: the least busy worker's CPU over the busiest's)."""
    before = meter.read(server.process.pid)
    workers_before = workers_cpu_seconds(server.process.pid)
    found = wrk(url, script, timeout=timeout, **env)
    workers_after = workers_cpu_seconds(server.process.pid)
    after = meter.read(server.process.pid)
    found["cpu_us"] = {
        name: None
        if after[name] is None
        else (after[name] - before[name]) / found["requests"] * 1e6
        for name in after
    }
    spent = [
        workers_after[pid] - workers_before[pid] for pid in workers_after if pid in workers_before
    ]
    found["worker_balance"] = min(spent) / max(spent) if len(spent) > 1 and max(spent) else None
    return found


def balanced_wrk(
    meter: CpuMeter, server: Server, script, env: dict, timeout: str | None = None
) -> dict:
    """A measured wrk run in which both workers served (`balanced`)."""
    return balanced(lambda: measured_wrk(meter, server, server.url, script, timeout, **env))


def balanced(measure: Callable[[], dict]) -> dict:
    """`measure()`, a measured wrk run, run again (at most RERUNS times) when one worker
    took most of wrk's connections.

    The workers share one listening socket (gunicorn.conf.py), and wrk opens its 16
    connections in one burst: a worker the kernel did not schedule during it gets
    few, and the row runs at about half its throughput. That is the load generator's
    doing (a load balancer opens its connections over time), so such a round is run
    again; `reruns` says how often it was.
    """
    reruns = 0
    while True:
        found = measure()
        balance = found["worker_balance"]
        if balance is None or balance >= BALANCED or reruns == RERUNS:
            return {**found, "reruns": reruns}
        reruns += 1


def workers_cpu_seconds(master: int) -> dict[int, float]:
    """Each live worker's CPU seconds, by pid."""
    spent = {}
    for pid in children(master):
        with contextlib.suppress(*PROCESS_GONE):
            spent[pid] = cpu_seconds(pid)
    return spent


def publish(text: str, path: Path) -> None:
    """Print a bench's report and write it to `path` (under bench/results/, git-ignored)."""
    print()
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def wrk(
    url: str,
    script: Path | None = None,
    duration: str = DURATION,
    connections: str = CONNECTIONS,
    timeout: str | None = None,
    **env: str,
) -> dict:
    """wrk's findings; `timeout` replaces wrk's 2 s, past which it drops a request unmeasured."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}", "--latency"]
    if timeout:
        command += ["--timeout", timeout]
    if script:
        command += ["-s", str(script)]
    result = subprocess.run(
        [*command, url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(result.stdout)


def parse_wrk(out: str) -> dict:
    """Requests, throughput, p50/p99 (ms), hit ratio, the count of answers wrk calls
    errors (status 400 and above: "non_2xx") and the count of each status (bench/tally.lua)."""
    hit_ratio = re.search(r"HIT_RATIO ([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": parse_duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": parse_duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "hit_ratio": float(hit_ratio.group(1)) if hit_ratio else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "statuses": {
            int(status): int(count)
            for status, count in re.findall(r"^STATUS (\d+) (\d+)$", out, re.MULTILINE)
        },
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, so its p50 and p99 belong together."""
    ranked = sorted(runs, key=lambda run: run["rps"])
    return ranked[len(ranked) // 2]


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{' '.join(wrk_version[:2])}, gunicorn.conf.py with {WORKERS} workers, "
        f"wrk 1 thread {CONNECTIONS} connections {DURATION} x{REPEAT} on the same cores"
    )
