"""`make bench`'s peer caches: each answers what the API answers, and the stale-read
load tells a cache that serves old versions from one that does not."""

import json
import os
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from bench.harness import Server
from bench.peers import CACHES, report
from bench.stale_reads import HttpItems, run_load
from tests.factories import ItemFactory
from tests.test_container import postgres_url


class VersionedSource:
    """Items whose version each write bumps; `frozen`: a cache never invalidated."""

    def __init__(self, ids: list[int], *, frozen: bool):
        self.versions = dict.fromkeys(ids, 1)
        self.served = dict(self.versions) if frozen else self.versions
        self.lock = threading.Lock()

    def read(self, item_id: int) -> int:
        with self.lock:
            return self.served[item_id]

    def write(self, item_id: int, quantity: int) -> int:
        with self.lock:
            self.versions[item_id] += 1
            return self.versions[item_id]


def test_the_load_finds_the_stale_reads_of_a_cache_that_keeps_what_it_first_served():
    source = VersionedSource([1, 2], frozen=True)

    history = run_load(source.read, source.write, [1, 2], readers=4, writes_per_writer=10)

    # Every load ends with each reader reading every item after the last write.
    assert len(history.stale) >= 4 * 2
    assert {stale.served for stale in history.stale} == {1}


def test_the_load_finds_no_stale_read_where_every_read_serves_the_current_version():
    source = VersionedSource([1, 2], frozen=False)

    history = run_load(source.read, source.write, [1, 2], readers=4, writes_per_writer=10)

    assert history.stale == []
    assert history.reads >= 4 * 2
    assert history.newest(1) + history.newest(2) == 2 * 10 + 2


@pytest.fixture
def first_item(transactional_db):
    """Item 1, committed: the server start waits for /api/items/1/ to answer."""
    return ItemFactory(id=1)


@pytest.fixture
def serve(monkeypatch, django_db_setup):
    """Start a bench server for one of bench.peers.CACHES on the test database."""
    venv_bin = Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{os.environ['PATH']}")
    started = []

    def start(settings: str) -> Server:
        server = Server(
            "backend.wsgi:application",
            DJANGO_SETTINGS_MODULE=settings,
            DATABASE_URL=postgres_url(connection.settings_dict),
            REDIS_URL=os.environ["REDIS_URL"],
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def test_every_peer_answers_the_apis_json_for_an_item(serve, first_item):
    servers = {settings: serve(settings) for settings in {cache.settings for cache in CACHES}}
    api = get_json(f"{servers['backend.settings'].url}/api/items/1/")

    assert api["id"] == 1
    assert api["name"] == first_item.name
    for cache in CACHES:
        url = f"{servers[cache.settings].url}{cache.read_path}1/"
        for attempt in ("miss", "hit"):
            assert get_json(url) == api, (cache.name, attempt)


def test_the_projects_cache_serves_no_stale_read_under_the_load(serve, first_item, stored_token):
    ids = [first_item.pk, ItemFactory(id=2).pk]
    server = serve("backend.settings")
    items = HttpItems(server.url, "/api/items/", stored_token)

    history = run_load(items.read, items.write, ids, readers=4, writes_per_writer=15)

    assert history.stale == []
    assert history.reads >= 4 * len(ids)
    assert sum(history.newest(item_id) for item_id in ids) == 2 * 15 + len(ids)


def test_a_cache_that_does_not_serve_keeps_its_row_with_the_reason(capsys, monkeypatch):
    monkeypatch.setattr("bench.peers.machine", lambda: "test machine")
    run = {"rps": 1000.0, "p50": 1.0, "p99": 5.0, "hit_ratio": 1.0, "non_2xx": 0}
    run["cpu_us"] = {"service": 700.0}
    own, *peers = CACHES
    served = [own, *peers[:-1]]
    results = {
        cache.name: {"hot": run, "zipf": run, "stale": {"stale": 0, "reads": 10, "writes": 4}}
        for cache in served
    }
    runs = {(cache.name, scenario): [run] for cache in served for scenario in ("hot", "zipf")}

    lines = report(results, {peers[-1].name: "does not start"}, runs)

    assert f"| {peers[-1].label()}: does not start | {' | '.join(['n/a'] * 11)} |" in lines
    assert any(
        line.startswith(f"| {own.label()} | 1,000 | 1.00 | 5.00 | 100.0% | 700 |") for line in lines
    )
    assert any("hot: project's cache / fastest peer" in line and "1.00x" in line for line in lines)


def test_every_other_write_of_the_load_is_conditional():
    sent = []
    answers = iter([(200, b'{"version": 2}'), (200, b'{"version": 3}')])
    items = HttpItems("http://127.0.0.1:1", "/api/items/", "token")
    items._request = lambda method, path, body, headers: sent.append(headers) or next(answers)

    versions = [items.write(1, quantity) for quantity in (0, 1)]

    assert versions == [2, 3]
    assert [headers.get("If-Match") for headers in sent] == [None, "*"]
