"""`python -m bench.rows` (make bench's second step): the rest of the API, one table.

One gunicorn configured as bench/run.py's (production settings and gunicorn.conf.py,
access logs and metrics on), with both throttles on at a rate no client reaches. Rows:
list pages, create, update and delete, a read/write mix over Zipf ids, conditional
reads, and beside them a cached read and the floor. Each row runs BENCH_REPEAT times,
interleaved, and the run with the median throughput is reported. Then each worker's
resident memory, and, in this process through the same WSGI application and settings,
the SQL queries and Redis round trips one request of each row makes
(bench/request_counts.py).
"""

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    HOT_IDS,
    ITEMS,
    REPEAT,
    ROOT,
    ZIPF_S,
    CpuMeter,
    Server,
    balanced,
    children,
    machine,
    measured_wrk,
    median_run,
    publish,
    require_wrk,
    resident_mib,
    seed,
    service_env,
    wrk,
)
from bench.request_counts import Counts, per_request, wsgi_request
from bench.rows_setup import (
    bench_token,
    list_pages,
    reserve_ids,
    restore_items,
    write_etags,
)

LIST_PAGES = int(os.environ.get("BENCH_LIST_PAGES", "50"))
# Items seeded for each delete run to take; past them a delete is a 404.
DELETE_IDS = int(os.environ.get("BENCH_DELETE_IDS", "30000"))
WRITE_FRACTION = float(os.environ.get("BENCH_WRITE_FRACTION", "0.1"))
# wrk's own request timeout, far above a PATCH's p99 here.
WRITES_SETTLE_SECONDS = 2
# The middle 80 % of the seeded prices (bench/harness.py SEED_SQL: item n costs
# (n % 100000) / 100), most expensive first.
TOP_PRICE = min(ITEMS, 99_999) / 100
LIST_FILTER = f"min_price={TOP_PRICE / 10:.2f}&max_price={TOP_PRICE * 0.9:.2f}&ordering=-price"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100  # backend/pagination.py
RESULTS = ROOT / "bench" / "results" / "rows.md"
SCRIPTS = ROOT / "bench"


@dataclass
class Load:
    """How wrk drives a row: its script, the environment of each run, what follows a run."""

    script: str
    env: Callable[[], dict[str, str]]
    after: Callable[[], None] = lambda: None

    def warm(self, url: str) -> None:
        wrk(url, SCRIPTS / self.script, duration="2s", **self.env())
        self.after()

    def run(self, meter: CpuMeter, server: Server) -> dict:
        """A measured run, again with a fresh environment when one worker took most of wrk's
        connections (`balanced`)."""

        def measure() -> dict:
            found = measured_wrk(meter, server, server.url, SCRIPTS / self.script, **self.env())
            self.after()
            return found

        return balanced(measure)


@dataclass
class Row:
    name: str
    load: Load | None  # None: counted in-process only
    # Makes the function that sends one request of the row in-process; None: a mix of
    # requests that other rows count one by one.
    sender: Callable[[], Callable[[], object]] | None
    shown_statuses: tuple[int, ...] = field(default=())  # in the table even when none came


def application():
    from bench.wsgi import application  # sets Django up: only once the environment is set

    return application


def request(method: str, path: str, token: str = "", body: bytes = b"", **headers: str):
    """A sender of one in-process request (see Row.sender)."""
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Token {token}"
    return lambda: wsgi_request(application(), method, path, body=body, headers=headers)


def cache_off(send: Callable[[], object]) -> Callable[[], object]:
    from django.test import override_settings

    def send_uncached():
        with override_settings(CACHE_ENABLED=False):
            return send()

    return send_uncached


def fixed(send: Callable[[], object]) -> Callable[[], Callable[[], object]]:
    """A Row.sender for a request that is the same every time."""
    return lambda: send


def each_id(make: Callable[[int], Callable[[], object]], ids) -> Callable[[], object]:
    """Send `make(id)`'s request with the next id of `ids` at each call."""
    remaining = iter(ids)
    return lambda: make(next(remaining))()


def conditional_read(item_id: int) -> Callable[[], object]:
    """A GET of the item with If-None-Match: its ETag as read (and cached) just now."""
    _, headers, _ = request("GET", f"/api/items/{item_id}/")()
    return request("GET", f"/api/items/{item_id}/", HTTP_IF_NONE_MATCH=headers["ETag"])


def define_rows(server: Server, token: str, scratch: Path) -> list[Row]:
    def env(**values) -> Callable[[], dict[str, str]]:
        return lambda: {name: str(value) for name, value in values.items()}

    def list_row(page_size: int, filters: str = "") -> Row:
        size = f"page_size={page_size}" if page_size != DEFAULT_PAGE_SIZE else ""
        query = "&".join(filter(None, [size, filters]))
        pages = list_pages(server.url, query, page_size, LIST_PAGES)
        load = Load("lists.lua", env(BENCH_PAGES=pages, BENCH_QUERY=query))
        name = ", ".join(
            filter(None, [f"list, {page_size} a page", filters, f"pages 1 to {pages}"])
        )
        return Row(name, load, fixed(request("GET", f"/api/items/?page=1&{query}")))

    def delete_env() -> dict[str, str]:
        first = reserve_ids(DELETE_IDS).start
        return {"BENCH_TOKEN": token, "BENCH_WRITE": "delete", "BENCH_FIRST_ID": str(first)}

    def conditional_env() -> dict[str, str]:
        # The mix runs just before: a PATCH still in flight when its wrk stopped would
        # change an item after its ETag was taken, and that item would answer 200.
        time.sleep(WRITES_SETTLE_SECONDS)
        etags = scratch / "etags"
        write_etags(server.port, range(1, HOT_IDS + 1), etags)
        return {"BENCH_IDS": str(HOT_IDS), "BENCH_ETAGS_FILE": str(etags)}

    patch_body = b'{"quantity": 7}'
    hot = env(BENCH_IDS=HOT_IDS, BENCH_DISTRIBUTION="uniform")
    return [
        list_row(DEFAULT_PAGE_SIZE),
        list_row(DEFAULT_PAGE_SIZE, LIST_FILTER),
        list_row(MAX_PAGE_SIZE),
        list_row(MAX_PAGE_SIZE, LIST_FILTER),
        Row(
            "create (POST)",
            Load("writes.lua", env(BENCH_TOKEN=token, BENCH_WRITE="create"), restore_items),
            fixed(request("POST", "/api/items/", token, b'{"name": "Counted", "price": "1.00"}')),
        ),
        Row(
            f"update (PATCH), uniform over {ITEMS:,} ids",
            Load("writes.lua", env(BENCH_TOKEN=token, BENCH_WRITE="update", BENCH_IDS=ITEMS)),
            fixed(request("PATCH", "/api/items/2/", token, patch_body)),
        ),
        Row(
            f"delete, {DELETE_IDS:,} ids reserved a run",
            Load("writes.lua", delete_env, restore_items),
            lambda: each_id(
                lambda item_id: request("DELETE", f"/api/items/{item_id}/", token),
                reserve_ids(10),
            ),
            shown_statuses=(204, 404),
        ),
        Row(
            f"mix: {1 - WRITE_FRACTION:.0%} reads, {WRITE_FRACTION:.0%} PATCH, "
            f"Zipf s={ZIPF_S} over {ITEMS:,} ids",
            Load(
                "reads.lua",
                env(
                    BENCH_TOKEN=token,
                    BENCH_WRITE_FRACTION=WRITE_FRACTION,
                    BENCH_IDS=ITEMS,
                    BENCH_DISTRIBUTION="zipf",
                    BENCH_ZIPF_S=ZIPF_S,
                ),
            ),
            None,
        ),
        Row(
            f"conditional read (If-None-Match, current ETag), hot ({HOT_IDS:,} ids)",
            Load("conditional.lua", conditional_env),
            lambda: conditional_read(1),
            shown_statuses=(304, 200),
        ),
        Row(
            f"cached read, hot ({HOT_IDS:,} ids)",
            Load("reads.lua", hot),
            fixed(request("GET", "/api/items/1/")),
        ),
        Row(
            "cache miss (counted only)",
            None,
            lambda: each_id(
                lambda item_id: request("GET", f"/api/items/{item_id}/"), range(ITEMS, 0, -1)
            ),
        ),
        Row(
            "uncached read, cache disabled (counted only)",
            None,
            fixed(cache_off(request("GET", "/api/items/1/"))),
        ),
        Row(
            "floor: minimal Django view, same middleware",
            Load("reads.lua", env(BENCH_IDS=HOT_IDS, BENCH_PATH="/bench/floor/")),
            fixed(request("GET", "/bench/floor/1/")),
        ),
    ]


def main() -> None:
    require_wrk()
    seed()
    token = bench_token()
    with tempfile.TemporaryDirectory() as scratch, Server() as server:
        rows = define_rows(server, token, Path(scratch))
        loaded = [row for row in rows if row.load]
        server.warm(HOT_IDS)
        for row in loaded:  # warm-up, not reported
            row.load.warm(server.url)
        meter = CpuMeter()
        runs = {row.name: [] for row in loaded}
        for round_number in range(REPEAT):
            print(f"round {round_number + 1}/{REPEAT} ...", flush=True)
            for row in loaded:
                runs[row.name].append(row.load.run(meter, server))
        memory = [resident_mib(pid) for pid in children(server.process.pid)]
    # The server's settings, but for logs and metrics, which would write to this table's
    # stdout and make no query or round trip of their own.
    os.environ.update(service_env(LOG_LEVEL="ERROR", METRICS_ENABLED="false"))
    counts = {row.name: row.sender and per_request(row.sender()) for row in rows}
    restore_items()
    results = {name: median_run(found) for name, found in runs.items()}
    reruns = {name: sum(found["reruns"] for found in rounds) for name, rounds in runs.items()}
    table = render(rows, results, counts, memory, machine(), reruns)
    publish(table, RESULTS)


def render(
    rows: list[Row],
    results: dict[str, dict],
    counts: dict[str, Counts | None],
    memory: list[float],
    machine_line: str,
    reruns: dict[str, int] | None = None,
) -> str:
    lines = [
        f"Machine: {machine_line}",
        "",
        "| row | requests/s | p50 ms | p99 ms | answers by status | 4xx/5xx | X-Cache HIT "
        "| SQL queries/request | Redis round trips/request |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        found = results.get(row.name)
        timing = ["—"] * 6
        if found is not None:
            hit = "n/a" if found["hit_ratio"] is None else f"{found['hit_ratio']:.1%}"
            timing = [
                f"{found['rps']:,.0f}",
                f"{found['p50']:.2f}",
                f"{found['p99']:.2f}",
                statuses(found["statuses"], row.shown_statuses),
                f"{sum(n for status, n in found['statuses'].items() if status >= 400):,}",
                hit,
            ]
        counted = counts.get(row.name)
        per_request_counts = (
            ["n/a", "n/a"]
            if counted is None
            else [
                f"{counted.sql:g}",
                f"{counted.redis:g}",
            ]
        )
        lines.append(f"| {' | '.join([row.name, *timing, *per_request_counts])} |")
    resident = ", ".join(f"{mib:.1f}" for mib in memory)
    lines += ["", f"Resident memory per gunicorn worker after the runs (VmRSS, MiB): {resident}"]
    again = ", ".join(f"{name} {count}" for name, count in (reruns or {}).items() if count)
    if again:
        lines += ["", f"Rounds run again, one worker having taken most connections: {again}"]
    return "\n".join(lines) + "\n"


def statuses(found: dict[int, int], shown: tuple[int, ...]) -> str:
    """Each status and its count: the row's `shown` ones first, even at 0."""
    order = [*shown, *sorted(set(found) - set(shown))]
    return ", ".join(f"{status}: {found.get(status, 0):,}" for status in order)


if __name__ == "__main__":
    main()
