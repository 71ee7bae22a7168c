"""`make bench`: the read path's throughput and latency in production's configuration,
as ratios measured in one run.

Seeds BENCH_ITEMS rows into a dedicated PostgreSQL database, starts gunicorn with
production settings (but for worker recycling) against the local PostgreSQL and
Redis: the anonymous throttle on (at a rate no client reaches, so every request is
counted and none refused), JSON access lines and EMF metrics on. Drives each row from
a second process with wrk on loopback and prints one Markdown table. Every row runs
BENCH_REPEAT times, interleaved, and the median run is reported, so slow drift on a
shared machine hits all alike; the ratios are also printed round by round, to show how
far the machine's noise moved them within the run. BENCH_RUNS=5 repeats the whole run
five times and ends with each ratio's five values, their median and whether the
targets hold: the median meets each target and no run falls more than 10 % short.

Beside throughput and latency, each row says how much CPU one request cost in each
process on the machine (the service, Redis, PostgreSQL, wrk): on a machine where all of
them share the cores, that is what the throughput is made of.
"""

import contextlib
import os
import statistics
from dataclasses import dataclass

from bench.harness import (
    HOT_IDS,
    ITEMS,
    REPEAT,
    ROOT,
    ZIPF_S,
    CpuMeter,
    Server,
    balanced_wrk,
    machine,
    median_run,
    require_wrk,
    seed,
    wrk,
)

RUNS = int(os.environ.get("BENCH_RUNS", "1"))
RESULTS = ROOT / "bench" / "results" / "run.md"
HOT = f"cached read, hot ({HOT_IDS:,} ids)"
UNCACHED = f"uncached read ({HOT_IDS:,} ids, cache disabled)"
ZIPF = f"cached read, Zipf s={ZIPF_S} over {ITEMS:,} ids"
FLOOR = "floor: minimal Django view, same middleware"
OUTERMOST = "outermost answer: /healthz, from the first middleware"
UNTHROTTLED = "cached read, hot, anonymous throttle off"


@dataclass(frozen=True)
class Ratio:
    """`field` of row `top` over row `bottom`, and the target it must meet, if any."""

    label: str
    top: str
    bottom: str
    field: str = "rps"
    form: str = ".2f"
    at_least: float | None = None
    at_most: float | None = None

    def of(self, results: dict[str, dict]) -> float:
        return results[self.top][self.field] / results[self.bottom][self.field]

    @property
    def target(self) -> str:
        if self.at_least is not None:
            return f">= {self.at_least:{self.form}}"
        if self.at_most is not None:
            return f"<= {self.at_most:{self.form}}"
        return ""

    def short_by(self, value: float) -> float:
        """How far `value` falls short of the target, as a fraction of it (0: met)."""
        if self.at_least is not None:
            return max(0.0, 1 - value / self.at_least)
        if self.at_most is not None:
            return max(0.0, value / self.at_most - 1)
        return 0.0


RATIOS = [
    Ratio("cached / uncached throughput", HOT, UNCACHED, at_least=2.5),
    Ratio("cached / floor throughput", HOT, FLOOR, form=".0%", at_least=0.70),
    Ratio("cached p99 / floor p99", HOT, FLOOR, field="p99", at_most=1.5),
    Ratio("cached / outermost answer throughput", HOT, OUTERMOST),
    Ratio("Zipf / hot cached throughput", ZIPF, HOT, form=".0%"),
    Ratio("throttle on / off, cached throughput", HOT, UNTHROTTLED, form=".0%"),
]


def main() -> None:
    require_wrk()
    seed()
    RESULTS.unlink(missing_ok=True)
    every_run = []
    for run in range(RUNS):
        if RUNS > 1:
            print(f"run {run + 1}/{RUNS}", flush=True)
        rounds = measure()
        results = {name: median_run(found) for name, found in rounds.items()}
        report(results, rounds)
        every_run.append(results)
    if RUNS > 1:
        print()
        for line in summary(every_run):
            print(line)


def measure() -> dict[str, list[dict]]:
    """Every row, BENCH_REPEAT rounds interleaved, on servers started for this run."""
    reads = ROOT / "bench" / "reads.lua"
    hot = {"BENCH_IDS": str(HOT_IDS), "BENCH_DISTRIBUTION": "uniform"}
    zipf = {"BENCH_IDS": str(ITEMS), "BENCH_DISTRIBUTION": "zipf", "BENCH_ZIPF_S": ZIPF_S}
    floor = {**hot, "BENCH_PATH": "/bench/floor/"}
    outermost = {"BENCH_FIXED_PATH": "/healthz"}
    meter = CpuMeter()
    with contextlib.ExitStack() as running:  # every server started is stopped
        cached = running.enter_context(Server())
        uncached = running.enter_context(Server(CACHE_ENABLED="false"))
        unthrottled = running.enter_context(Server(API_THROTTLE_ANON_RATE=""))
        # Every row runs the same wrk script, so the load generator does the same
        # work per request in each; only the URL and the server differ.
        rows = {
            HOT: (cached, hot),
            UNCACHED: (uncached, hot),
            ZIPF: (cached, zipf),
            FLOOR: (cached, floor),
            OUTERMOST: (cached, outermost),
            UNTHROTTLED: (unthrottled, hot),
        }
        cached.warm(HOT_IDS)
        unthrottled.warm(HOT_IDS)
        for server, env in rows.values():  # warm-up, not reported
            wrk(server.url, reads, duration="3s", **env)
        rounds = {name: [] for name in rows}
        for round_number in range(REPEAT):
            print(f"round {round_number + 1}/{REPEAT} ...", flush=True)
            for name, (server, env) in rows.items():
                rounds[name].append(balanced_wrk(meter, server, reads, env))
    return rounds


def per_round(rounds: dict[str, list[dict]], ratio: Ratio) -> str:
    """The ratio in each round: how far noise moved it."""
    values = [
        ratio.of({ratio.top: top, ratio.bottom: bottom})
        for top, bottom in zip(rounds[ratio.top], rounds[ratio.bottom], strict=True)
    ]
    return ", ".join(format(value, ratio.form) for value in values)


def report(results: dict[str, dict], rounds: dict[str, list[dict]]) -> None:
    lines = ["", f"Machine: {machine()}", ""]
    processes = ("service", "redis", "postgres", "wrk")
    lines.append(
        "| scenario | requests/s | p50 ms | p99 ms | X-Cache HIT | non-2xx "
        "| CPU µs/request: service | Redis | PostgreSQL | wrk |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, found in results.items():
        ratio = f"{found['hit_ratio']:.1%}" if found["hit_ratio"] is not None else "n/a"
        cpu = " | ".join(
            "n/a" if found["cpu_us"][process] is None else f"{found['cpu_us'][process]:.0f}"
            for process in processes
        )
        lines.append(
            f"| {name} | {found['rps']:,.0f} | {found['p50']:.2f} | {found['p99']:.2f} "
            f"| {ratio} | {found['non_2xx']} | {cpu} |"
        )
    lines.append("")
    reruns = {name: sum(found.get("reruns", 0) for found in rounds[name]) for name in rounds}
    if any(reruns.values()):
        again = ", ".join(f"{name} {count}" for name, count in reruns.items() if count)
        lines.append(f"- rounds run again, one worker having taken most connections: {again}")
    for ratio in RATIOS:
        target = f"target {ratio.target}; " if ratio.target else ""
        lines.append(
            f"- {ratio.label}: {ratio.of(results):{ratio.form}} "
            f"({target}per round: {per_round(rounds, ratio)})"
        )
    print("\n".join(lines))
    write_results(lines)


def summary(every_run: list[dict[str, dict]]) -> list[str]:
    """Each ratio in every run, the median, and whether the targets hold over the runs."""
    header = " | ".join(f"run {number}" for number in range(1, len(every_run) + 1))
    lines = [
        f"| ratio | {header} | median | target | met |",
        "|---|" + "---:|" * (len(every_run) + 2) + "---|",
    ]
    for ratio in RATIOS:
        values = [ratio.of(results) for results in every_run]
        median = statistics.median(values)
        met = ""
        if ratio.target:
            worst = max(ratio.short_by(value) for value in values)
            met = "yes" if ratio.short_by(median) == 0 and worst <= 0.10 else "no"
        cells = " | ".join(format(value, ratio.form) for value in values)
        lines.append(
            f"| {ratio.label} | {cells} | {median:{ratio.form}} | {ratio.target} | {met} |"
        )
    write_results(["", *lines])
    return lines


def write_results(lines: list[str]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as results:
        results.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
