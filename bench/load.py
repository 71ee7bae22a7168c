"""A bounded HTTP load over several servers that records, and checks, every answer.

Threads send at a fixed total rate (kind to a shared machine, and the same load
before, during and after a fault) until stopped, or until a request count or a
time limit is reached. Each thread keeps one keep-alive connection per server and
goes round the servers; reads are of random ids from a hot set, a fraction of the
requests are PATCH writes of a new description. Every read's version is checked
against the writes acknowledged before it was sent (bench.consistency.History).

Before reusing a connection, a thread looks whether the server has closed it, as
HTTP clients do (urllib3's `is_connection_dropped`): a request fails with a
connection error only when the server went away while it was in flight.
"""

import contextlib
import http.client
import json
import math
import random
import select
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bench.consistency import History

REQUEST_TIMEOUT = 20.0
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    """One request: where, what, when it was sent (monotonic) and what came back."""

    server: int
    method: str
    path: str
    phase: str
    sent: float
    latency: float
    status: int | None  # None: no answer (the connection failed or timed out)
    cache: str | None = None
    content_type: str | None = None
    fresh: bool | None = None  # reads answered 200: whether the version was fresh
    error: str | None = None

    @property
    def answered(self) -> float:
        return self.sent + self.latency


@dataclass
class Mix:
    """What the load asks for: ids to read and write, and the share of each kind."""

    ids: list[int]
    write_fraction: float = 0.05
    list_fraction: float = 0.0


class Load:
    """`threads` clients sending `rate` requests a second in all to `ports`, round robin."""

    def __init__(
        self,
        ports: list[int],
        token: str,
        mix: Mix,
        *,
        threads: int = 8,
        rate: float = 200.0,
        max_requests: int = 100_000,
        max_seconds: float = 900.0,
        history: History | None = None,
    ):
        self.ports, self.token, self.mix = ports, token, mix
        self.threads, self.rate = threads, rate
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.history = history or History()
        self.answers: list[Answer] = []
        self.phase = "before"
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()
        self._sent = 0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def mark(self, phase: str) -> float:
        """From now on, requests belong to `phase`; returns the moment it began."""
        now = time.monotonic()
        self.marks[phase] = now
        self.phase = phase
        return now

    def start(self) -> "Load":
        self.started = self.mark(self.phase)
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, args=(number,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(REQUEST_TIMEOUT + 5)

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exception) -> None:
        self.stop()

    def _take_turn(self) -> bool:
        with self._lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
        return time.monotonic() - self.started < self.max_seconds

    def _run(self, number: int) -> None:
        chooser = random.Random(number)
        connections: dict[int, http.client.HTTPConnection] = {}
        interval = self.threads / self.rate
        due = time.monotonic() + chooser.random() * interval
        sequence = 0
        try:
            while not self._stop.is_set() and self._take_turn():
                # Behind schedule (a fault slowed the answers): do not fire a burst to catch up.
                due = max(due + interval, time.monotonic() - interval)
                if (pause := due - time.monotonic()) > 0 and self._stop.wait(pause):
                    break
                server = sequence % len(self.ports)
                sequence += 1
                self.answers.append(
                    self._request(connections, server, chooser, f"{number}-{sequence}")
                )
        finally:
            for connection in connections.values():
                connection.close()

    def _request(self, connections, server, chooser, tag) -> Answer:
        draw = chooser.random()
        item_id = chooser.choice(self.mix.ids)
        headers, body, fields = {}, None, None
        if draw < self.mix.write_fraction:
            method, path = "PATCH", f"/api/items/{item_id}/"
            fields = {"description": f"drill write {tag}"}
            body = json.dumps(fields)
            headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        elif draw < self.mix.write_fraction + self.mix.list_fraction:
            method, path = "GET", f"/api/items/?page={chooser.randint(1, 50)}"
        else:
            method, path = "GET", f"/api/items/{item_id}/"
        newest = self.history.newest(item_id)
        phase, sent = self.phase, time.monotonic()
        connection = self._connection(connections, server)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            connections.pop(server, None)
            return Answer(
                server, method, path, phase, sent, time.monotonic() - sent, None,
                error=type(error).__name__,
            )  # fmt: skip
        latency = time.monotonic() - sent
        fresh = None
        if response.status == 200 and path.startswith("/api/items/") and "?" not in path:
            version = json.loads(payload)["version"]
            if fields is not None:
                self.history.acknowledged(item_id, version, fields)
            else:
                fresh = self.history.served(item_id, newest, version)
        return Answer(
            server, method, path, phase, sent, latency, response.status,
            response.getheader("X-Cache"), response.getheader("Content-Type"), fresh,
        )  # fmt: skip

    def _connection(self, connections, server) -> http.client.HTTPConnection:
        connection = connections.get(server)
        if connection is not None and _dropped(connection):
            connection.close()
            connection = None
        if connection is None:
            connection = http.client.HTTPConnection(
                HOST, self.ports[server], timeout=REQUEST_TIMEOUT
            )
            connections[server] = connection
        return connection


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed this idle connection (it reads as ready: EOF or reset)."""
    if connection.sock is None:
        return False
    with contextlib.suppress(OSError, ValueError):
        return bool(select.select([connection.sock], [], [], 0)[0])
    return True


# --- What a load saw ----------------------------------------------------------------


def percentile(values: Iterable[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in 0..1) of `values`; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class PhaseSummary:
    requests: int = 0
    server_errors: int = 0  # 5xx
    failed: int = 0  # no answer
    p99_ms: float | None = None
    max_ms: float | None = None
    hits: int = 0
    reads: int = 0
    statuses: dict[int | None, int] = field(default_factory=dict)

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / self.reads if self.reads else None


def summarize(answers: Iterable[Answer]) -> PhaseSummary:
    answers = list(answers)
    latencies = [answer.latency * 1000 for answer in answers]
    summary = PhaseSummary(
        requests=len(answers),
        server_errors=sum(1 for a in answers if a.status is not None and a.status >= 500),
        failed=sum(1 for a in answers if a.status is None),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies, default=None),
    )
    for answer in answers:
        summary.statuses[answer.status] = summary.statuses.get(answer.status, 0) + 1
        if is_item_read(answer) and answer.status == 200:
            summary.reads += 1
            summary.hits += answer.cache == "HIT"
    return summary


def is_item_read(answer: Answer) -> bool:
    return answer.method == "GET" and "?" not in answer.path


def first_window(
    answers: list[Answer],
    since: float,
    good: Callable[[list[Answer]], bool],
    width: float = 1.0,
) -> float | None:
    """Seconds from `since` to the end of the first `width`-second window (stepping by a
    tenth of it) of answers sent after `since` that is `good`; None if none is."""
    later = sorted((a for a in answers if a.sent >= since), key=lambda a: a.sent)
    if not later:
        return None
    steps = 0
    while (start := since + steps * width / 10) + width <= later[-1].sent:
        window = [a for a in later if start <= a.sent < start + width]
        if window and good(window):
            return start + width - since
        steps += 1
    return None


def hit_ratio_at_least(threshold: float) -> Callable[[list[Answer]], bool]:
    def good(window: list[Answer]) -> bool:
        reads = [a for a in window if is_item_read(a) and a.status == 200]
        return bool(reads) and sum(a.cache == "HIT" for a in reads) / len(reads) >= threshold

    return good
