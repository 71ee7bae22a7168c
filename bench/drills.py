"""`make drills`: outages injected under load into a fleet of its own, and what came of them.

Each drill starts its own PostgreSQL, Redis and two gunicorn tasks (bench/fleet.py),
runs a bounded load over both tasks (bench/load.py) before, during and after one
fault, then checks the outcome against the bounds below: 5xx, connection errors,
lost writes (acknowledged writes the database does not hold), stale reads (every
read checked against the writes acknowledged before it was sent), latency, recovery.
One Markdown table, to stdout and bench/results/drills.md; the exit status is 1 when
any drill failed, with its reasons under the table.

`--short` (CI): the same six drills and checks with shorter phases and outages.
"""

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.fleet import Fleet, Template, fleet, stop_on_sigterm, template, workers
from bench.harness import ROOT, publish
from bench.load import (
    Answer,
    Load,
    Mix,
    PhaseSummary,
    first_window,
    hit_ratio_at_least,
    summarize,
)

RESULTS = ROOT / "bench" / "results" / "drills.md"

# Settings of the service the bounds derive from (backend/settings.py defaults).
REDIS_TIMEOUT = 0.2
BREAKER_COOLDOWN = 5.0
THREADS_PER_WORKER = 4

# Bounds, with room for a busy 2-core machine shared with other work.
P99_REDIS_DOWN_MS = 1500  # reads go to PostgreSQL; Redis refuses at once
# A request makes a few Redis calls of 0.2 s at most before its process's breaker opens;
# one held without a timeout would wait out the pause (5 s or more).
SLOW_REDIS_MAX_MS = 2500
HIT_RATIO = 0.9
HIT_RATIO_WITHIN = BREAKER_COOLDOWN + 10  # the cool-down, then the hot set refilled
BREAKER_CLOSES_WITHIN = BREAKER_COOLDOWN + 5
# PostgreSQL refuses at once: a hung thread would pay DB_CONNECT_TIMEOUT or the statement
# timeout (5 s each).
DATABASE_503_WITHIN_MS = 3000
DATABASE_BACK_WITHIN = 10
REPLACEMENT_SERVES_WITHIN = 20  # gunicorn notices at once; Django loads in a second or a few
# A killed worker's connections close at once, but on a busy machine its peers may see the
# close a few milliseconds later: a request sent in between was in flight as well.
CLOSE_SEEN_WITHIN = 0.1
# Threads held by the slow clients would make others wait toward API_BODY_TIMEOUT_SECONDS.
SLOW_CLIENT_P99_MS = 2500
SLOW_CLIENT_ANSWERED_AFTER = 3  # beyond API_BODY_TIMEOUT_SECONDS
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Mode:
    name: str
    workers: int  # gunicorn workers per task
    items: int
    hot_ids: int
    rate: float
    warm_up: float  # load before the measured phases: every worker's first requests
    before: float
    outage: float  # Redis stopped, PostgreSQL down
    pause: float  # Redis paused
    missed: float  # writes the stale Redis node missed
    body_timeout: float  # API_BODY_TIMEOUT_SECONDS of the slow-client drill
    settle: float  # load kept on after recovery, every read still checked
    max_requests: int


FULL = Mode("full", 2, 5000, 100, 200, 2, 5, 10, 8, 5, 10, 10, 20_000)
# One worker per task: half the processes to boot, per drill, on CI's machine.
SHORT = Mode("short", 1, 2000, 100, 150, 1, 3, 4, 5, 3, 5, 3, 6_000)


@dataclass
class Drill:
    """One row of the table, and what failed."""

    name: str
    answers: list[Answer] = field(default_factory=list)
    lost_writes: int = 0
    stale_reads: int = 0
    acknowledged: int = 0
    recovery: str = ""
    failures: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # when each phase began

    def phase(self, name: str) -> PhaseSummary:
        return summarize(a for a in self.answers if a.phase == name)

    def check(self, holds: bool, failure: str) -> None:
        if not holds:
            self.failures.append(failure)

    @property
    def passed(self) -> bool:
        return not self.failures


def wait_until(condition: Callable[[], bool], within: float, step: float = 0.1) -> float | None:
    """Seconds until `condition()` held, or None when it did not within `within`."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - started
        time.sleep(step)
    return None


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


# --- The drills: each injects its fault into a running load and judges what is particular to it.


def redis_stopped(service: Fleet, load: Load, mode: Mode, drill: Drill) -> None:
    service.redis.crash()
    load.mark("during")
    time.sleep(mode.outage)
    service.redis.start()  # with its data as it was when it stopped
    back = load.mark("after")
    recovered = wait_for_hit_ratio(load, back)
    drill.recovery = seconds(recovered, f"hit ratio ≥ {HIT_RATIO:.0%}")
    drill.check(recovered is not None, f"hit ratio not back to {HIT_RATIO:.0%} within bound")
    during = drill.phase("during")
    drill.check(
        during.p99_ms is not None and during.p99_ms <= P99_REDIS_DOWN_MS,
        f"p99 during the outage {ms(during.p99_ms)} above {P99_REDIS_DOWN_MS} ms",
    )


def redis_paused(service: Fleet, load: Load, mode: Mode, drill: Drill) -> None:
    service.redis.pause()
    paused = load.mark("during")
    try:
        time.sleep(mode.pause)
    finally:
        service.redis.resume()
    resumed = load.mark("after")

    def hits_on_every_server() -> bool:
        return {a.server for a in load.answers if a.sent >= resumed and a.cache == "HIT"} == set(
            range(len(service.servers))
        )

    closed = wait_until(hits_on_every_server, BREAKER_CLOSES_WITHIN)
    drill.recovery = seconds(closed, "breaker closed (HIT) on both tasks")
    bypassed = {a.server for a in load.answers if a.sent >= paused and a.cache == "BYPASS"}
    drill.check(
        bypassed == set(range(len(service.servers))), "the breaker did not open on every task"
    )
    drill.check(closed is not None, f"the breaker did not close within {BREAKER_CLOSES_WITHIN} s")
    during = drill.phase("during")
    drill.check(
        during.max_ms is not None and during.max_ms <= SLOW_REDIS_MAX_MS,
        f"a request was held {ms(during.max_ms)} (bound {SLOW_REDIS_MAX_MS} ms)",
    )


def redis_failover(service: Fleet, load: Load, mode: Mode, drill: Drill) -> None:
    snapshot = service.logs / "older.rdb"
    service.redis.snapshot(snapshot)
    missed_since = load.mark("during")  # writes from here on are not in the snapshot
    time.sleep(mode.missed)
    service.redis.restore(snapshot)
    back = load.mark("after")
    missed = {a.path for a in load.answers if a.method == "PATCH" and a.sent >= missed_since}
    recovered = wait_for_hit_ratio(load, back)
    drill.recovery = seconds(recovered, f"hit ratio ≥ {HIT_RATIO:.0%}")
    drill.recovery += f"; {len(missed)} items written that the node missed"
    drill.check(bool(missed), "no write happened between the snapshot and the failover")
    drill.check(recovered is not None, f"hit ratio not back to {HIT_RATIO:.0%} within bound")


def postgres_restarted(service: Fleet, load: Load, mode: Mode, drill: Drill) -> None:
    service.postgres.stop(immediate=True)
    down = load.mark("during")
    readiness = []
    while time.monotonic() - down < mode.outage:
        readiness += [status_of(f"{server.url}/readyz") for server in service.servers]
        time.sleep(0.5)
    service.postgres.start()
    ready = wait_until(
        lambda: all(status_of(f"{s.url}/readyz") == 200 for s in service.servers),
        DATABASE_BACK_WITHIN,
    )
    load.mark("after")  # ready again: from here on, no request may fail
    drill.recovery = seconds(ready, "/readyz 200 on both tasks")
    drill.check(
        readiness and set(readiness) == {503}, f"/readyz during the outage: {sorted(readiness)}"
    )
    drill.check(ready is not None, f"not ready again within {DATABASE_BACK_WITHIN} s")
    unavailable = [a for a in load.answers if a.status == 503]
    drill.check(
        all(a.content_type == PROBLEM for a in unavailable), "a 503 that is not a JSON problem"
    )
    slowest = max((a.latency * 1000 for a in unavailable), default=0)
    drill.check(
        slowest <= DATABASE_503_WITHIN_MS,
        f"a 503 took {slowest:.0f} ms (bound {DATABASE_503_WITHIN_MS} ms)",
    )


def worker_killed(service: Fleet, load: Load, mode: Mode, drill: Drill) -> None:
    target = service.servers[0]
    (worker,) = workers(target.process.pid)
    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: gone(worker), 10, step=0.001)
    dead = load.mark("during")
    refused = connections_refused_until_replaced(target.port, target.process.pid, worker)
    served = wait_until(
        lambda: any(a.server == 0 and a.status == 200 and a.sent >= dead for a in load.answers),
        REPLACEMENT_SERVES_WITHIN,
    )
    load.mark("after")
    drill.recovery = seconds(
        None if served is None else dead - killed + served, "the replacement served"
    )
    failed = [a for a in load.answers if a.status is None]
    # Sent before the worker's sockets were closed (and seen closed over loopback).
    in_flight = [
        a
        for a in failed
        if a.server == 0
        and a.sent < dead + CLOSE_SEEN_WITHIN
        and a.error != "ConnectionRefusedError"
    ]
    drill.check(refused is not None, "gunicorn started no replacement worker")
    drill.check(
        not refused,
        f"task 0 refused {refused} new connections while its worker was replaced "
        "(nothing listened on its port)",
    )
    drill.check(served is not None, "the replacement did not serve")
    drill.check(
        len(failed) == len(in_flight),
        f"{len(failed) - len(in_flight)} requests failed that were not in flight on the worker: "
        + ", ".join(sorted({a.error or "" for a in failed if a not in in_flight})),
    )
    drill.check(
        len(in_flight) <= load.threads,
        f"{len(in_flight)} in-flight failures, more than the load's {load.threads} threads",
    )


def connections_refused_until_replaced(port: int, master: int, killed: int) -> int | None:
    """Connect to the task every few milliseconds from the kill until its replacement worker
    has been running a moment; how many connections were refused (None: no replacement).

    A task whose listening socket is its master's queues them until a worker accepts.
    """
    refused, replaced_at = 0, None
    deadline = time.monotonic() + REPLACEMENT_SERVES_WITHIN
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            refused += 1
        if replaced_at is None and workers(master) - {killed}:
            replaced_at = time.monotonic()
        if replaced_at is not None and time.monotonic() - replaced_at > 0.05:
            return refused
        time.sleep(0.002)
    return None


def slow_client(service: Fleet, load: Load, mode: Mode, drill: Drill) -> None:
    clients = [
        SlowClient(server.port, service.token) for server in service.servers for _ in range(2)
    ]
    load.mark("during")
    for client in clients:
        client.start()
    limit = mode.body_timeout + SLOW_CLIENT_ANSWERED_AFTER
    for client in clients:
        client.join(limit + 1)
    load.mark("after")
    answers = [client.outcome for client in clients]
    drill.recovery = "slow clients answered " + ", ".join(
        f"{status} in {took:.1f} s" for status, took in answers
    )
    drill.check(
        all(status == 408 and took <= limit for status, took in answers),
        f"slow clients not answered 408 within {limit:.0f} s: {answers}",
    )
    during = drill.phase("during")
    drill.check(
        during.p99_ms is not None and during.p99_ms <= SLOW_CLIENT_P99_MS,
        f"p99 beside the slow clients {ms(during.p99_ms)} above {SLOW_CLIENT_P99_MS} ms",
    )


class SlowClient(threading.Thread):
    """A PATCH whose body is sent a byte a second: (status or None, seconds) in `outcome`."""

    def __init__(self, port: int, token: str):
        super().__init__(daemon=True)
        self.port, self.token = port, token
        self.outcome: tuple[int | None, float] = (None, 0.0)

    def run(self) -> None:
        body = json.dumps({"description": "x" * 60}).encode()
        head = (
            f"PATCH /api/items/1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.monotonic()
        received = b""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(head)
            for byte in body:
                with contextlib.suppress(TimeoutError):
                    if chunk := sock.recv(4096):
                        received += chunk
                        break
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
            with contextlib.suppress(OSError):
                sock.settimeout(5)
                while chunk := sock.recv(4096):
                    received += chunk
        status = received.split(b" ", 2)[1] if received.startswith(b"HTTP/1.1 ") else None
        self.outcome = (int(status) if status else None, time.monotonic() - started)


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie's sockets are closed already)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_for_hit_ratio(load: Load, since: float) -> float | None:
    def recovered() -> bool:
        return first_window(load.answers, since, hit_ratio_at_least(HIT_RATIO)) is not None

    if wait_until(recovered, HIT_RATIO_WITHIN + 1, step=0.5) is None:
        return None
    found = first_window(load.answers, since, hit_ratio_at_least(HIT_RATIO))
    return found if found is not None and found <= HIT_RATIO_WITHIN else None


def seconds(value: float | None, what: str) -> str:
    return f"not reached: {what}" if value is None else f"{value:.1f} s to {what}"


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


# --- Running them -------------------------------------------------------------------------


def no_settings(mode: Mode) -> dict:
    return {}


# Each drill: how it injects its fault, and the settings its tasks run with.
DRILLS = {
    "Redis stopped, restarted with its old data": (redis_stopped, no_settings),
    "Redis paused (SIGSTOP), then resumed": (redis_paused, no_settings),
    "Redis failover to a node that missed writes": (redis_failover, no_settings),
    "PostgreSQL restarted (immediate shutdown)": (postgres_restarted, no_settings),
    # One worker per task, so that only the replacement can serve that task afterwards.
    "gunicorn worker killed (SIGKILL)": (worker_killed, lambda mode: {"WEB_CONCURRENCY": "1"}),
    "slow clients (a body byte a second)": (
        slow_client,
        lambda mode: {"API_BODY_TIMEOUT_SECONDS": str(mode.body_timeout)},
    ),
}


def run(name: str, source: Template, mode: Mode) -> Drill:
    inject, settings = DRILLS[name]
    env = {"WEB_CONCURRENCY": str(mode.workers), **settings(mode)}
    drill = Drill(name)
    print(f"drill: {name} ...", flush=True)
    began = time.monotonic()
    with fleet(source, **env) as service:
        hot = list(range(1, mode.hot_ids + 1))
        service.servers[0].warm(mode.hot_ids)
        load = Load(
            [server.port for server in service.servers],
            service.token,
            Mix(hot),
            rate=mode.rate,
            max_requests=mode.max_requests,
            max_seconds=mode.max_requests / mode.rate * 2,
        )
        drill.answers, drill.marks = load.answers, load.marks  # judged while the load runs
        load.phase = "warm-up"
        with load:
            time.sleep(mode.warm_up)
            load.mark("before")
            time.sleep(mode.before)
            inject(service, load, mode, drill)
            time.sleep(mode.settle)
        drill.answers = list(load.answers)
        history = load.history
        drill.acknowledged = len(history.acknowledged_ids)
        drill.lost_writes = len(history.lost_writes(service.rows(history.acknowledged_ids)))
        drill.stale_reads = len(history.stale)
    judge(drill, inject is postgres_restarted, inject is worker_killed)
    print(
        f"  {'passed' if drill.passed else 'FAILED'} in {time.monotonic() - began:.0f} s",
        flush=True,
    )
    return drill


def judge(drill: Drill, database_drill: bool, kill_drill: bool) -> None:
    """The checks every drill shares; each drill has added its own."""
    everything = summarize(drill.answers)
    unexpected_5xx = [
        a
        for a in drill.answers
        if a.status is not None and a.status >= 500 and not (database_drill and a.status == 503)
    ]
    drill.check(not unexpected_5xx, f"{len(unexpected_5xx)} unexpected 5xx answers")
    if not kill_drill:
        drill.check(everything.failed == 0, f"{everything.failed} requests got no answer")
    drill.check(drill.lost_writes == 0, f"{drill.lost_writes} acknowledged writes lost")
    drill.check(drill.stale_reads == 0, f"{drill.stale_reads} stale reads{when_stale(drill)}")
    drill.check(drill.acknowledged > 0, "no write was acknowledged: the load did not run")
    for phase in ("before", "during", "after"):
        drill.check(drill.phase(phase).requests > 0, f"no request in the {phase} phase")
    if database_drill:
        after = drill.phase("after").server_errors
        drill.check(after == 0, f"{after} 5xx answers once both tasks were ready again")


def when_stale(drill: Drill) -> str:
    """When the stale reads were sent, from the end of the fault: evidence for a failure."""
    stale = sorted(a.sent for a in drill.answers if a.fresh is False)
    if not stale or "after" not in drill.marks:
        return ""
    tasks = ", ".join(str(t) for t in sorted({a.server for a in drill.answers if a.fresh is False}))
    first, last = (moment - drill.marks["after"] for moment in (stale[0], stale[-1]))
    return f" (sent {first:+.1f} s to {last:+.1f} s from the fault's end, by task {tasks})"


def table(drills: list[Drill]) -> str:
    lines = [
        "| drill | requests | 5xx | no answer | lost writes | stale reads "
        "| p99 ms before / during / after | recovery | result |",
        "|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for drill in drills:
        total = summarize(drill.answers)
        p99 = " / ".join(
            "n/a" if (value := drill.phase(phase).p99_ms) is None else f"{value:.0f}"
            for phase in ("before", "during", "after")
        )
        lines.append(
            f"| {drill.name} | {total.requests:,} | {total.server_errors} | {total.failed} "
            f"| {drill.lost_writes} of {drill.acknowledged} | {drill.stale_reads} | {p99} "
            f"| {drill.recovery} | {'pass' if drill.passed else 'FAIL'} |"
        )
    return "\n".join(lines)


def report(drills: list[Drill], mode: Mode, took: float) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    failures = [f"- {d.name}: {'; '.join(d.failures)}" for d in drills if not d.passed]
    return "\n".join(
        [
            f"Drills ({mode.name}), {when}, {took:.0f} s; load {mode.rate:.0f} requests/s "
            f"over {mode.hot_ids} hot ids, 5 % writes, two tasks.",
            "",
            table(drills),
            "",
            *(["Failures:", *failures] if failures else ["Every drill passed."]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="shorter phases and outages (CI)")
    parser.add_argument("--only", action="append", help="run the drills whose name contains this")
    arguments = parser.parse_args(argv)
    mode = SHORT if arguments.short else FULL
    names = [
        name
        for name in DRILLS
        if not arguments.only or any(part.lower() in name.lower() for part in arguments.only)
    ]
    stop_on_sigterm()
    started = time.monotonic()
    with template(mode.items) as source:
        drills = [run(name, source, mode) for name in names]
    text = report(drills, mode, time.monotonic() - started)
    publish(text, RESULTS)
    return 0 if all(drill.passed for drill in drills) else 1


if __name__ == "__main__":
    sys.exit(main())
