"""`make bench`, second part: the project's read cache beside what a Django developer
would otherwise reach for, on the same gunicorn, middleware, PostgreSQL and Redis.

The peers (bench/peer_caches/): (a) cache-aside with django-redis in retrieve(),
(b) drf-extensions' cache_response, (c) django-cachalot under the API's own read
with the project's cache off. Each cache gets a server of its own, started with
production settings and the production gunicorn.conf.py, the throttles on at a
rate no client reaches. Rows: a hot read (HOT_IDS ids, warmed) and a Zipf read over
all ids, both with wrk and bench/reads.lua, BENCH_REPEAT rounds interleaved across
the caches, the median run reported; then a stale-read load (bench/stale_reads.py)
with the writes through the API's PATCH on the same server, BENCH_REPEAT times,
the counts summed.
"""

import contextlib
import importlib.metadata
import os
import secrets
import urllib.request
from dataclasses import dataclass

import psycopg2

from bench.harness import (
    DATABASE_URL,
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
    publish,
    require_wrk,
    seed,
    wrk,
)
from bench.stale_reads import HttpItems, run_load

STALE_IDS = int(os.environ.get("BENCH_STALE_IDS", "3"))
STALE_READERS = int(os.environ.get("BENCH_STALE_READERS", "8"))
STALE_WRITERS = int(os.environ.get("BENCH_STALE_WRITERS", "2"))
STALE_WRITES = int(os.environ.get("BENCH_STALE_WRITES", "200"))  # per writer and round
RESULTS = ROOT / "bench" / "results" / "peers.md"


@dataclass(frozen=True)
class Cache:
    name: str
    settings: str  # DJANGO_SETTINGS_MODULE of its server
    read_path: str  # items are read at {read_path}{id}/
    distribution: str | None = None  # the package it needs, None for the project's own
    counts_hits: bool = False  # whether its X-Cache header says HIT

    def label(self) -> str:
        if self.distribution is None:
            return self.name
        try:
            version = importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return f"{self.name} ({self.distribution})"
        return f"{self.name} ({self.distribution} {version})"


CACHES = [
    Cache("project's cache", "backend.settings", "/api/items/", counts_hits=True),
    Cache(
        "cache-aside in retrieve()",
        "bench.peer_caches.settings",
        "/bench/peers/cache-aside/items/",
        "django-redis",
    ),
    Cache(
        "cache_response",
        "bench.peer_caches.settings",
        "/bench/peers/drf-extensions/items/",
        "drf-extensions",
    ),
    Cache(
        "ORM query cache, API read with the project's cache off",
        "bench.peer_caches.cachalot_settings",
        "/api/items/",
        "django-cachalot",
    ),
]


def start(cache: Cache) -> Server | str:
    """Its server, or why it does not serve on the pinned Django and DRF."""
    if cache.distribution is not None:
        try:
            importlib.metadata.version(cache.distribution)
        except importlib.metadata.PackageNotFoundError:
            return f"not installed ({cache.distribution}); {pinned()}"
    try:
        return Server(
            "backend.wsgi:application",
            DJANGO_SETTINGS_MODULE=cache.settings,
        )
    except SystemExit as error:
        return f"does not start ({error}); {pinned()}"


def pinned() -> str:
    versions = (importlib.metadata.version(name) for name in ("django", "djangorestframework"))
    return "Django {} / DRF {}".format(*versions)


def writer_token() -> str:
    """A DRF token of a bench user, for the stale-read load's writes."""
    connection = psycopg2.connect(DATABASE_URL)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "VALUES ('!', false, 'bench-writer', '', '', '', false, true, now()) "
            "ON CONFLICT (username) DO UPDATE SET is_active = true RETURNING id"
        )
        user_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO authtoken_token (key, user_id, created) VALUES (%s, %s, now()) "
            "ON CONFLICT (user_id) DO UPDATE SET key = authtoken_token.key RETURNING key",
            [secrets.token_hex(20), user_id],
        )
        token = cursor.fetchone()[0]
    connection.close()
    return token


def warm(server: Server, cache: Cache, ids: int) -> None:
    """Read each of the first `ids` items once, so the hot row starts all hits."""
    for item_id in range(1, ids + 1):
        urllib.request.urlopen(f"{server.url}{cache.read_path}{item_id}/", timeout=5).read()


SCENARIOS = {
    "hot": {"BENCH_IDS": str(HOT_IDS), "BENCH_DISTRIBUTION": "uniform"},
    "zipf": {"BENCH_IDS": str(ITEMS), "BENCH_DISTRIBUTION": "zipf", "BENCH_ZIPF_S": ZIPF_S},
}
READS = ROOT / "bench" / "reads.lua"


def main() -> None:
    require_wrk()
    seed()
    token = writer_token()
    with contextlib.ExitStack() as running:  # every server started is stopped
        started = {cache.name: start(cache) for cache in CACHES}
        servers = {}
        for cache in CACHES:
            if isinstance(server := started[cache.name], Server):
                running.callback(server.stop)
                servers[cache] = server
        runs = timed_rounds(servers)
        stale = stale_read_loads(servers, token)
    results = {
        cache.name: {scenario: median_run(runs[cache.name, scenario]) for scenario in SCENARIOS}
        | {"stale": stale[cache.name]}
        for cache in servers
    }
    unavailable = {name: why for name, why in started.items() if not isinstance(why, Server)}
    lines = report(results, unavailable, runs)
    publish("\n".join(lines), RESULTS)


def timed_rounds(servers: dict[Cache, Server]) -> dict[tuple[str, str], list[dict]]:
    """Every scenario of every cache, REPEAT rounds interleaved, after a warm-up."""
    for cache, server in servers.items():
        warm(server, cache, HOT_IDS)
        for env in SCENARIOS.values():  # warm-up, not reported
            wrk(server.url, READS, duration="3s", BENCH_PATH=cache.read_path, **env)
    meter = CpuMeter()
    runs = {(cache.name, scenario): [] for cache in servers for scenario in SCENARIOS}
    for round_number in range(REPEAT):
        print(f"round {round_number + 1}/{REPEAT} ...", flush=True)
        for cache, server in servers.items():
            for scenario, env in SCENARIOS.items():
                found = balanced_wrk(meter, server, READS, {"BENCH_PATH": cache.read_path, **env})
                runs[cache.name, scenario].append(found)
    return runs


def stale_read_loads(servers: dict[Cache, Server], token: str) -> dict[str, dict]:
    """Reads, stale reads and writes of each cache's loads, REPEAT rounds interleaved."""
    ids = list(range(1, STALE_IDS + 1))
    counts = {cache.name: {"reads": 0, "stale": 0, "writes": 0} for cache in servers}
    for round_number in range(REPEAT):
        print(f"stale-read load {round_number + 1}/{REPEAT} ...", flush=True)
        for cache, server in servers.items():
            items = HttpItems(server.url, cache.read_path, token)
            history = run_load(
                items.read,
                items.write,
                ids,
                readers=STALE_READERS,
                writers=STALE_WRITERS,
                writes_per_writer=STALE_WRITES,
            )
            counts[cache.name]["reads"] += history.reads
            counts[cache.name]["stale"] += len(history.stale)
            counts[cache.name]["writes"] += STALE_WRITERS * STALE_WRITES
    return counts


def _hits(found: dict, cache: Cache) -> str:
    if not cache.counts_hits or found["hit_ratio"] is None:
        return "n/a"
    return f"{found['hit_ratio']:.1%}"


def report(
    results: dict[str, dict], unavailable: dict[str, str], runs: dict[tuple, list[dict]]
) -> list[str]:
    """The table, one row per cache (kept, with the reason, for one that does not serve)."""
    lines = [
        "",
        f"Machine: {machine()}",
        "",
        f"Stale-read load: {STALE_READERS} readers, {STALE_WRITERS} writers of "
        f"{STALE_WRITES} PATCHes each (every other with If-Match: *) on {STALE_IDS} items, "
        f"x{REPEAT}.",
        "",
        "| cache | hot requests/s | p50 ms | p99 ms | X-Cache HIT | service CPU µs/request "
        "| Zipf requests/s | p50 ms | p99 ms | X-Cache HIT | non-2xx "
        "| stale reads / reads (writes) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cache in CACHES:
        if cache.name in unavailable:
            cells = " | ".join(["n/a"] * 11)
            lines.append(f"| {cache.label()}: {unavailable[cache.name]} | {cells} |")
            continue
        found = results[cache.name]
        hot, zipf, stale = found["hot"], found["zipf"], found["stale"]
        service = hot["cpu_us"]["service"]
        lines.append(
            f"| {cache.label()} | {hot['rps']:,.0f} | {hot['p50']:.2f} | {hot['p99']:.2f} "
            f"| {_hits(hot, cache)} | {'n/a' if service is None else f'{service:.0f}'} "
            f"| {zipf['rps']:,.0f} | {zipf['p50']:.2f} | {zipf['p99']:.2f} | {_hits(zipf, cache)} "
            f"| {hot['non_2xx'] + zipf['non_2xx']} "
            f"| {stale['stale']:,} / {stale['reads']:,} ({stale['writes']:,}) |"
        )
    lines += ["", *comparison(results, runs)]
    return lines


def comparison(results: dict[str, dict], runs: dict[tuple, list[dict]]) -> list[str]:
    """The project's cache against the fastest peer, of the medians and round by round."""
    own, *peers = CACHES
    peers = [cache.name for cache in peers if cache.name in results]
    if own.name not in results or not peers:
        return []
    lines = []
    for scenario in ("hot", "zipf"):
        fastest = max(peers, key=lambda name: results[name][scenario]["rps"])
        ratio = results[own.name][scenario]["rps"] / results[fastest][scenario]["rps"]
        per_round = ", ".join(
            f"{mine['rps'] / max(runs[name, scenario][index]['rps'] for name in peers):.2f}"
            for index, mine in enumerate(runs[own.name, scenario])
        )
        lines.append(
            f"- {scenario}: project's cache / fastest peer ({fastest}) throughput: {ratio:.2f}x "
            f"(target >= 1.00x; per round, against that round's fastest: {per_round})"
        )
    fresh = [name for name, found in results.items() if found["stale"]["stale"] == 0]
    lines.append(f"- no stale read: {', '.join(fresh) or 'none'} (target: the project's only)")
    return lines


if __name__ == "__main__":
    main()
