"""`make soak`: a long mixed load on a fleet of its own, sampled every minute; nothing may grow.

Runs SOAK_MINUTES (10) of reads, list pages and writes (bench/load.py) over the two
tasks of bench/fleet.py at SOAK_RATE requests a second, and records every minute:
throughput, p99, the workers' memory (RSS, all workers together), PostgreSQL
connections (pg_stat_activity), Redis clients and memory. After the first minute
(processes loading, the hot set filling) each series must level off: its highest
value in the second half of the run may not exceed its highest in the first half
by more than a small tolerance. Every read is also checked for staleness and every
acknowledged write for loss. Table to stdout and bench/results/soak.md, plot to
docs/plots/soak.png; exit status 1 when something grew or failed.
"""

import datetime
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.fleet import Fleet, fleet, stop_on_sigterm, template, workers
from bench.harness import ROOT, publish
from bench.load import Load, Mix, summarize

MINUTES = int(os.environ.get("SOAK_MINUTES", "10"))
RATE = float(os.environ.get("SOAK_RATE", "100"))
SAMPLE_SECONDS = 60
ITEMS = 5000
HOT_IDS = 1000  # read in the first minute or two, so the cache's size levels off early
RESULTS = ROOT / "bench" / "results" / "soak.md"
PLOT = ROOT / "docs" / "plots" / "soak.png"

# How far a series may still rise in the run's second half: (share of its value, absolute).
TOLERANCE = {
    "worker_rss_mb": (0.05, 2.0),
    "postgres_connections": (0.0, 1),
    "redis_clients": (0.0, 2),
    "redis_memory_mb": (0.05, 0.5),
}


@dataclass(frozen=True)
class Sample:
    minute: int
    requests_per_s: float
    p99_ms: float | None
    server_errors: int
    failed: int
    worker_rss_mb: float
    postgres_connections: int
    redis_clients: int
    redis_memory_mb: float


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample(service: Fleet, load: Load, minute: int, since: float, until: float) -> Sample:
    answers = summarize(a for a in load.answers if since <= a.sent < until)
    info = service.redis.info()
    pids = [pid for server in service.servers for pid in workers(server.process.pid)]
    return Sample(
        minute=minute,
        requests_per_s=answers.requests / (until - since),
        p99_ms=answers.p99_ms,
        server_errors=answers.server_errors,
        failed=answers.failed,
        worker_rss_mb=sum(rss_mb(pid) for pid in pids),
        postgres_connections=service.postgres.count_connections(),
        redis_clients=info["connected_clients"],
        redis_memory_mb=info["used_memory"] / 2**20,
    )


def keeps_growing(series: list[float], share: float, absolute: float) -> bool | None:
    """Whether a series, its first value (warm-up) left out, still rises in its second
    half: its highest there above its highest in the first half by more than
    `share` of it plus `absolute`. None when too short to say (under 3 values left)."""
    settled = series[1:]
    if len(settled) < 3:
        return None
    half = len(settled) // 2
    first, second = max(settled[:half]), max(settled[half:])
    return second > first * (1 + share) + absolute


def growth(samples: list[Sample]) -> dict[str, bool | None]:
    return {
        name: keeps_growing([getattr(s, name) for s in samples], *tolerance)
        for name, tolerance in TOLERANCE.items()
    }


def table(samples: list[Sample]) -> str:
    lines = [
        "| minute | requests/s | p99 ms | 5xx | no answer | worker RSS MB (all) "
        "| PostgreSQL connections | Redis clients | Redis memory MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in samples:
        p99 = "n/a" if s.p99_ms is None else f"{s.p99_ms:.0f}"
        lines.append(
            f"| {s.minute} | {s.requests_per_s:.0f} | {p99} | {s.server_errors} | {s.failed} "
            f"| {s.worker_rss_mb:.1f} | {s.postgres_connections} | {s.redis_clients} "
            f"| {s.redis_memory_mb:.2f} |"
        )
    return "\n".join(lines)


def verdict(grew: dict[str, bool | None]) -> str:
    words = {True: "still growing", False: "levelled off", None: "too short a run to judge"}
    return "; ".join(f"{name}: {words[value]}" for name, value in grew.items())


def plot(samples: list[Sample], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("requests_per_s", "requests/s"),
        ("p99_ms", "p99 ms"),
        ("worker_rss_mb", "worker RSS MB (all workers)"),
        ("postgres_connections", "PostgreSQL connections"),
        ("redis_clients", "Redis connected clients"),
        ("redis_memory_mb", "Redis used memory MB"),
    ]
    figure, axes = plt.subplots(3, 2, figsize=(10, 8), sharex=True)
    minutes = [s.minute for s in samples]
    for axis, (name, title) in zip(axes.flat, panels, strict=True):
        values = [getattr(s, name) for s in samples]
        axis.plot(minutes, [float("nan") if v is None else v for v in values], marker="o")
        axis.set_title(title, fontsize=10)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("minute")
    figure.suptitle(f"make soak: {len(samples)} minutes at {RATE:.0f} requests/s, two tasks")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> int:
    stop_on_sigterm()
    started = datetime.datetime.now(datetime.UTC)
    print(f"soak: {MINUTES} minutes at {RATE:.0f} requests/s ...", flush=True)
    samples = []
    with template(ITEMS) as source, fleet(source) as service:
        mix = Mix(list(range(1, HOT_IDS + 1)), write_fraction=0.05, list_fraction=0.05)
        load = Load(
            [server.port for server in service.servers],
            service.token,
            mix,
            rate=RATE,
            max_requests=int(RATE * MINUTES * SAMPLE_SECONDS * 1.1),
            max_seconds=MINUTES * SAMPLE_SECONDS + 30,
        )
        with load:
            for minute in range(1, MINUTES + 1):
                since = load.started + (minute - 1) * SAMPLE_SECONDS
                time.sleep(max(0.0, since + SAMPLE_SECONDS - time.monotonic()))
                samples.append(sample(service, load, minute, since, time.monotonic()))
                print(f"  minute {minute}: {asdict(samples[-1])}", flush=True)
        history = load.history
        lost = history.lost_writes(service.rows(history.acknowledged_ids))
    grew = growth(samples)
    failures = [name for name, value in grew.items() if value]
    if any(s.server_errors or s.failed for s in samples):
        failures.append("5xx or requests without an answer")
    if history.stale or lost:
        failures.append(f"{len(history.stale)} stale reads, {len(lost)} lost writes")
    text = "\n".join(
        [
            f"Soak, {started:%Y-%m-%d %H:%M} UTC: {MINUTES} minutes at {RATE:.0f} requests/s "
            f"(90 % reads over {HOT_IDS:,} ids, 5 % list pages, 5 % writes), two tasks.",
            "",
            table(samples),
            "",
            f"{history.reads:,} reads checked: {len(history.stale)} stale; "
            f"{len(history.acknowledged_ids):,} items written: {len(lost)} lost writes.",
            f"Growth after the first minute: {verdict(grew)}.",
            "Result: " + ("pass" if not failures else "FAIL: " + ", ".join(failures)),
        ]
    )
    publish(text, RESULTS)
    plot(samples, PLOT)
    print(f"plot: {PLOT.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
