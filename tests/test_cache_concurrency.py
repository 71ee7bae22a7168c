"""The cache under real concurrency: stale fills, a stampede, and a read/write storm.

These run threads against the real PostgreSQL and Redis, each thread with its
own database connection, so they use transactional test databases.
"""

import random
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection
from django.test import Client

from backend.cache import HIT
from items import cache as items_cache
from items.cache import item_cache, read_item
from items.models import Item
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(target, *args):
    """Run `target` in a thread that closes its own database connection."""

    def run():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_fill_loaded_before_a_write_committed_is_rejected(monkeypatch):
    item = ItemFactory()
    loaded, resume = threading.Event(), threading.Event()
    original_load = items_cache._load
    reads = []

    def paused_load(item_id):
        entry = original_load(item_id)
        loaded.set()
        resume.wait(10)
        return entry

    monkeypatch.setattr(items_cache, "_load", paused_load)
    reader = in_thread(lambda: reads.append(read_item(item.pk)))
    assert loaded.wait(10)
    monkeypatch.setattr(items_cache, "_load", original_load)

    Item.objects.get(pk=item.pk).save()  # commits version 2, then invalidates
    resume.set()
    reader.join(10)

    assert reads[0][0].version == 1  # it began before the write committed
    after, status = read_item(item.pk)
    assert (status, after.version) == ("MISS", 2)
    assert read_item(item.pk)[0].version == 2


def test_concurrent_misses_on_a_cold_key_cause_one_select(settings):
    settings.CACHE_LOCK_WAIT = 5  # generous: the assertion is about counts, not speed
    item = ItemFactory()
    selects, statuses = [], []
    start = threading.Barrier(32)

    def count_item_selects(execute, sql, params, many, context):
        if sql.startswith("SELECT") and '"items_item"' in sql:
            selects.append(sql)
        return execute(sql, params, many, context)

    def request():
        with connection.execute_wrapper(count_item_selects):
            start.wait(10)
            response = Client().get(f"/api/items/{item.pk}/")
            statuses.append((response.status_code, response["X-Cache"]))

    threads = [in_thread(request) for _ in range(32)]
    for thread in threads:
        thread.join(30)

    assert len(selects) == 1
    assert sorted(statuses) == [(200, "HIT")] * 31 + [(200, "MISS")]


def test_no_read_returns_a_version_older_than_a_finished_write():
    """4 writers and 16 readers on 3 hot items; afterwards the cache equals the database."""
    hot_ids = [ItemFactory().pk for _ in range(3)]
    finished_writes = defaultdict(list)  # id -> [(finished at, version)]
    reads = []  # (id, started at, version)
    lock = threading.Lock()

    def writer(seed):
        rng = random.Random(seed)
        for _ in range(60):
            item = Item.objects.get(pk=rng.choice(hot_ids))
            item.quantity = rng.randrange(1000)
            item.save()
            with lock:
                finished_writes[item.pk].append((time.monotonic(), item.version))

    def reader(seed):
        rng = random.Random(seed)
        for _ in range(150):
            item_id = rng.choice(hot_ids)
            started = time.monotonic()
            version = read_item(item_id)[0].version
            with lock:
                reads.append((item_id, started, version))

    threads = [in_thread(writer, n) for n in range(4)]
    threads += [in_thread(reader, 100 + n) for n in range(16)]
    for thread in threads:
        thread.join(120)

    assert len(reads) == 16 * 150
    assert sum(len(w) for w in finished_writes.values()) == 4 * 60
    for item_id, started, version in reads:
        committed_before = [v for at, v in finished_writes[item_id] if at < started]
        assert version >= max(committed_before, default=1), (item_id, started, version)
    for item_id in hot_ids:
        read_item(item_id)  # fills the entry if the storm left it empty
        assert read_item(item_id) == (items_cache._unpack(items_cache._load(item_id)), HIT)
    assert not item_cache.breaker.is_open
