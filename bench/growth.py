"""`make bench-growth`: what an item read and a list page cost as the table grows.

For each size in BENCH_GROWTH_SIZES (default 10,000, 100,000 and 1,000,000 rows) it seeds
the bench database, vacuums it, starts gunicorn twice with production settings (cache on,
cache off; the anonymous throttle on at a rate no client reaches, as production counts
every request) and drives it with wrk through bench/reads.lua:

- an item read, cached, ids from a Zipf law over the whole table (the hit ratio shown);
- an item read, uncached, ids uniform over the whole table;
- a list page, default ordering, a page drawn among the first 50;
- a list page ordered by a field other than id and filtered, a page among the first 50.

Within a size the scenarios run BENCH_REPEAT times, interleaved, and the run with the
median throughput is reported; a round in which one worker took most of wrk's connections
is run again, at most twice (`balanced_wrk`), and the report says how often. The table
goes to stdout and bench/results/growth.md, the p99 of each request type against the
table's size to docs/plots/growth.png.
"""

import contextlib
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a bench machine
import matplotlib.pyplot as plt
import psycopg2
from matplotlib import ticker

from bench.harness import (
    DATABASE_URL,
    REPEAT,
    ROOT,
    ZIPF_S,
    CpuMeter,
    Server,
    balanced_wrk,
    machine,
    median_run,
    publish,
    require_wrk,
    seed,
    wrk,
)

DEFAULT_SIZES = "10000,100000,1000000"
LIST_PAGES = 50  # pages drawn from 1 to this
MIN_ROWS = LIST_PAGES * 20  # the API's default page size
# wrk drops a request slower than its timeout (2 s by default) from the latencies, which
# would hide exactly the slow tail this bench looks for.
WRK_TIMEOUT = "30s"
RESULTS = ROOT / "bench" / "results" / "growth.md"
PLOT = ROOT / "docs" / "plots" / "growth.png"

CACHED_READ = f"item read, cached (Zipf s={ZIPF_S} over all ids)"
UNCACHED_READ = "item read, uncached (uniform over all ids)"
LIST_PAGE = "list page (page 1-50)"
SORTED_FILTERED_PAGE = "list page, in_stock=true&ordering=price (page 1-50)"


def parse_sizes(text: str) -> list[int]:
    """Table sizes from a comma-separated list ("10000, 1_000_000"); refuses what is not one."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise SystemExit(
            f"BENCH_GROWTH_SIZES: give whole numbers separated by commas, not {text!r}"
        ) from None
    if any(size < MIN_ROWS for size in sizes):
        raise SystemExit(
            f"BENCH_GROWTH_SIZES: every size must be at least {MIN_ROWS:,} rows, so that "
            f"the first {LIST_PAGES} list pages exist: {text!r}"
        )
    return sizes


def scenarios(rows: int) -> dict[str, tuple[str, dict]]:
    """Each request type: the server that answers it ("cached" or "uncached") and wrk's env."""
    pages = {"BENCH_IDS": str(LIST_PAGES), "BENCH_DISTRIBUTION": "uniform", "BENCH_SUFFIX": ""}
    return {
        CACHED_READ: (
            "cached",
            {"BENCH_IDS": str(rows), "BENCH_DISTRIBUTION": "zipf", "BENCH_ZIPF_S": ZIPF_S},
        ),
        UNCACHED_READ: ("uncached", {"BENCH_IDS": str(rows), "BENCH_DISTRIBUTION": "uniform"}),
        LIST_PAGE: ("cached", {**pages, "BENCH_PATH": "/api/items/?page="}),
        SORTED_FILTERED_PAGE: (
            "cached",
            {**pages, "BENCH_PATH": "/api/items/?in_stock=true&ordering=price&page="},
        ),
    }


def vacuum_analyze() -> None:
    """Set the visibility map of the fresh rows (index-only scans need it) and the statistics."""
    connection = psycopg2.connect(DATABASE_URL)
    connection.autocommit = True  # VACUUM refuses to run inside a transaction
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE items_item")
    connection.close()


def prepare(rows: int) -> None:
    started = time.monotonic()
    seed(rows)
    seeded = time.monotonic()
    vacuum_analyze()
    print(
        f"seeded {rows:,} rows in {seeded - started:.1f} s, "
        f"VACUUM ANALYZE in {time.monotonic() - seeded:.1f} s",
        flush=True,
    )


def measure(rows: int) -> dict[str, list[dict]]:
    """Every scenario's runs at this table size, interleaved round by round."""
    reads = ROOT / "bench" / "reads.lua"
    plan = scenarios(rows)
    with contextlib.ExitStack() as running:  # every server started is stopped
        servers = {
            "cached": running.enter_context(Server()),
            "uncached": running.enter_context(Server(CACHE_ENABLED="false")),
        }
        for server, env in plan.values():  # warm-up, not reported
            wrk(servers[server].url, reads, duration="3s", timeout=WRK_TIMEOUT, **env)
        meter = CpuMeter()
        runs = {name: [] for name in plan}
        for round_number in range(REPEAT):
            print(f"{rows:,} rows: round {round_number + 1}/{REPEAT} ...", flush=True)
            for name, (server, env) in plan.items():
                runs[name].append(
                    balanced_wrk(meter, servers[server], reads, env, timeout=WRK_TIMEOUT)
                )
    return runs


def render_table(results: dict[int, dict[str, dict]]) -> str:
    """One Markdown row per table size and request type."""
    lines = [
        "| rows | request | requests/s | p50 ms | p99 ms | X-Cache HIT | non-2xx |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for rows, by_request in results.items():
        for name, found in by_request.items():
            ratio = "n/a" if found["hit_ratio"] is None else f"{found['hit_ratio']:.1%}"
            lines.append(
                f"| {rows:,} | {name} | {found['rps']:,.0f} | {found['p50']:.2f} "
                f"| {found['p99']:.2f} | {ratio} | {found['non_2xx']} |"
            )
    return "\n".join(lines)


def growth_lines(results: dict[int, dict[str, dict]]) -> list[str]:
    """For each request type, its p99 and throughput at the largest size over the smallest."""
    smallest, largest = min(results), max(results)
    if smallest == largest:
        return []
    return [
        f"- {name}: p99 {results[largest][name]['p99'] / found['p99']:.2f}x, "
        f"requests/s {results[largest][name]['rps'] / found['rps']:.2f}x "
        f"from {smallest:,} to {largest:,} rows"
        for name, found in results[smallest].items()
    ]


def plot(results: dict[int, dict[str, dict]], path: Path) -> None:
    """p99 against the table's size, one line per request type, both axes logarithmic."""
    sizes = sorted(results)
    figure, axes = plt.subplots(figsize=(8, 5))
    for name in results[sizes[0]]:
        axes.plot(sizes, [results[rows][name]["p99"] for rows in sizes], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xticks(sizes, [f"{rows:,}" for rows in sizes])
    axes.xaxis.set_minor_locator(ticker.NullLocator())
    axes.set_yscale("log")  # a list page can be 100x an item read; both must stay readable
    axes.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel("rows in the items table")
    axes.set_ylabel("p99 latency, ms")
    axes.set_title("Read and list latency as the table grows")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def rerun_line(reruns: dict[int, int]) -> list[str]:
    """How many rounds each size ran again (none: no line)."""
    if not any(reruns.values()):
        return []
    again = ", ".join(f"{rows:,} rows {count}" for rows, count in reruns.items() if count)
    return [f"- rounds run again, one worker having taken most connections: {again}"]


def report(results: dict[int, dict[str, dict]], reruns: dict[int, int]) -> str:
    return "\n".join(
        [
            f"Machine: {machine()}",
            "",
            render_table(results),
            "",
            *growth_lines(results),
            *rerun_line(reruns),
        ]
    )


def main() -> None:
    require_wrk()
    sizes = parse_sizes(os.environ.get("BENCH_GROWTH_SIZES", DEFAULT_SIZES))
    results, reruns = {}, {}
    for rows in sizes:
        prepare(rows)
        measured = measure(rows)
        results[rows] = {name: median_run(runs) for name, runs in measured.items()}
        reruns[rows] = sum(run["reruns"] for runs in measured.values() for run in runs)
    text = report(results, reruns)
    publish(text, RESULTS)
    plot(results, PLOT)
    print(f"\nwrote {RESULTS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
