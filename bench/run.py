"""`make bench`: the read path's throughput and latency, as ratios measured in one run.

Seeds BENCH_ITEMS rows into a dedicated PostgreSQL database, starts gunicorn with
production settings (but for worker recycling) three times (cache on, cache off,
throttle on) against the local PostgreSQL and Redis, drives each from a second
process with wrk on loopback and prints one Markdown table. Every scenario runs
BENCH_REPEAT times, interleaved, and the median run is reported, so slow drift on a
shared machine hits all alike; the target ratios are also printed round by round, to
show how far the machine's noise moved them within the run.

Beside throughput and latency, each row says how much CPU one request cost in each
process on the machine (the service, Redis, PostgreSQL, wrk): on a machine where all of
them share the cores, that is what the throughput is made of.
"""

import contextlib

from bench.harness import (
    HOT_IDS,
    ITEMS,
    REPEAT,
    ROOT,
    ZIPF_S,
    CpuMeter,
    Server,
    machine,
    measured_wrk,
    median_run,
    require_wrk,
    seed,
    wrk,
)


def main() -> None:
    require_wrk()
    seed()
    reads = ROOT / "bench" / "reads.lua"
    hot = {"BENCH_IDS": str(HOT_IDS), "BENCH_DISTRIBUTION": "uniform"}
    zipf = {"BENCH_IDS": str(ITEMS), "BENCH_DISTRIBUTION": "zipf", "BENCH_ZIPF_S": ZIPF_S}
    floor = {**hot, "BENCH_PATH": "/bench/floor/"}
    meter = CpuMeter()
    with contextlib.ExitStack() as running:  # every server started is stopped
        cached = running.enter_context(Server())
        uncached = running.enter_context(Server(CACHE_ENABLED="false"))
        # A limit no client reaches: what the anonymous throttle's bookkeeping costs.
        throttled = running.enter_context(Server(API_THROTTLE_ANON_RATE="100000000/min"))
        # Every row runs the same wrk script, so the load generator does the same
        # work per request in each; only the URL and the server differ.
        scenarios = {
            f"cached read, hot ({HOT_IDS:,} ids)": (cached, hot),
            f"uncached read ({HOT_IDS:,} ids, cache disabled)": (uncached, hot),
            f"cached read, Zipf s={ZIPF_S} over {ITEMS:,} ids": (cached, zipf),
            "floor: minimal Django view, same middleware": (cached, floor),
            "cached read, hot, anonymous throttle on": (throttled, hot),
        }
        cached.warm(HOT_IDS)
        throttled.warm(HOT_IDS)
        for server, env in scenarios.values():  # warm-up, not reported
            wrk(server.url, reads, duration="3s", **env)
        runs = {name: [] for name in scenarios}
        for round_number in range(REPEAT):
            print(f"round {round_number + 1}/{REPEAT} ...", flush=True)
            for name, (server, env) in scenarios.items():
                runs[name].append(measured_wrk(meter, server, server.url, reads, **env))
    report({name: median_run(found) for name, found in runs.items()}, runs)


def per_round(runs: dict[str, list[dict]], top: str, bottom: str, field: str, form: str) -> str:
    """A ratio for each round (`field` of `top` over `bottom`): how far noise moved it."""
    pairs = zip(runs[top], runs[bottom], strict=True)
    return ", ".join(format(above[field] / below[field], form) for above, below in pairs)


def report(results: dict[str, dict], runs: dict[str, list[dict]]) -> None:
    names = list(results)
    hot, uncached, zipf, floor, throttled = (results[name] for name in names)
    print()
    print(f"Machine: {machine()}")
    print()
    processes = ("service", "redis", "postgres", "wrk")
    print(
        "| scenario | requests/s | p50 ms | p99 ms | X-Cache HIT | non-2xx "
        "| CPU µs/request: service | Redis | PostgreSQL | wrk |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, found in results.items():
        ratio = f"{found['hit_ratio']:.1%}" if found["hit_ratio"] is not None else "n/a"
        cpu = " | ".join(
            "n/a" if found["cpu_us"][process] is None else f"{found['cpu_us'][process]:.0f}"
            for process in processes
        )
        print(
            f"| {name} | {found['rps']:,.0f} | {found['p50']:.2f} | {found['p99']:.2f} "
            f"| {ratio} | {found['non_2xx']} | {cpu} |"
        )
    print()
    print(
        f"- cached / uncached throughput: {hot['rps'] / uncached['rps']:.2f}x (target >= 2.5x; "
        f"per round: {per_round(runs, names[0], names[1], 'rps', '.2f')})"
    )
    print(
        f"- cached / floor throughput: {hot['rps'] / floor['rps']:.0%} (target >= 70%; "
        f"per round: {per_round(runs, names[0], names[3], 'rps', '.0%')})"
    )
    print(
        f"- cached p99 / floor p99: {hot['p99'] / floor['p99']:.2f}x (target <= 1.5x; "
        f"per round: {per_round(runs, names[0], names[3], 'p99', '.2f')})"
    )
    print(f"- Zipf / hot cached throughput: {zipf['rps'] / hot['rps']:.0%}")
    print(f"- throttled / unthrottled cached throughput: {throttled['rps'] / hot['rps']:.0%}")


if __name__ == "__main__":
    main()
