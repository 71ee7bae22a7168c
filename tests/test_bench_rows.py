"""`python -m bench.rows`: its per-request counts of SQL and Redis round trips, its table."""

import pytest
from django_redis import get_redis_connection

from bench.request_counts import Counts, counting, per_request, wsgi_request
from bench.rows import Load, Row, render, statuses


@pytest.fixture
def throttle_off(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": None, "user": None},
    }


def read(item_id: int):
    from backend.wsgi import application  # after the session's static files are collected

    return lambda: wsgi_request(application, "GET", f"/api/items/{item_id}/")


def test_a_warm_cache_hit_is_one_round_trip_and_no_sql(stored_item, throttle_off):
    read(stored_item.pk)()  # the miss that fills

    assert per_request(read(stored_item.pk)) == Counts(sql=0, redis=1)


def test_the_anonymous_throttles_counter_rides_on_a_hits_round_trip(stored_item):
    read(stored_item.pk)()

    assert per_request(read(stored_item.pk)) == Counts(sql=0, redis=1)


def test_a_miss_is_one_query_and_three_round_trips(stored_item, throttle_off):
    """The read a hit would have answered, the lease taken with a second read, and the
    fill that releases the lease (docs/caching.md: a miss makes three store calls)."""
    read(stored_item.pk + 1)()  # another item's miss: every connection is open

    with counting() as counter:
        status, headers, _ = read(stored_item.pk)()

    assert (status, headers["X-Cache"]) == ("200 OK", "MISS")
    assert (counter.sql, counter.redis) == (1, 3)


@pytest.mark.parametrize(
    ("conditional", "statements"),
    [
        (False, 3),  # the token, the read, the compare-and-set UPDATE
        (True, 8),  # and If-Match's BEGIN, row lock, the save's savepoint and COMMIT
    ],
)
def test_an_update_is_the_token_the_read_and_one_compare_and_set(
    stored_item, stored_token, conditional, statements
):
    from backend.wsgi import application
    from items.models import Item

    def patch():
        headers = {"HTTP_AUTHORIZATION": f"Token {stored_token}"}
        if conditional:
            version = Item.objects.get(pk=stored_item.pk).version
            headers["HTTP_IF_MATCH"] = f'"{stored_item.pk}-{version}"'
        with counting() as counter:
            status, _, _ = wsgi_request(
                application,
                "PATCH",
                f"/api/items/{stored_item.pk}/",
                body=b'{"quantity": 7}',
                headers=headers,
            )
        assert status == "200 OK"
        return counter.sql

    patch()  # connections open
    assert patch() == statements


def test_a_pipeline_is_one_round_trip(db):
    redis = get_redis_connection()
    redis.ping()

    with counting() as counter:
        pipeline = redis.pipeline(transaction=False)
        for key in ("a", "b", "c"):
            pipeline.get(f"bench-rows-test-{key}")
        pipeline.execute()

    assert counter.redis == 1


def test_statuses_shows_the_rows_own_statuses_first_even_at_zero():
    assert statuses({204: 1200, 500: 3}, shown=(204, 404)) == "204: 1,200, 404: 0, 500: 3"


def test_render_puts_timings_statuses_and_counts_in_one_table():
    rows = [
        Row("delete", None, None, shown_statuses=(204, 404)),
        Row("mix", None, None),
        Row("miss", None, None),
    ]
    timed = {"rps": 1234.5, "p50": 1.0, "p99": 9.5, "statuses": {}}
    results = {
        "delete": {**timed, "hit_ratio": None, "statuses": {204: 900, 404: 2, 503: 1}},
        "mix": {**timed, "hit_ratio": 0.725, "statuses": {200: 1000}},
    }
    counts = {"delete": Counts(sql=5, redis=2), "mix": None, "miss": Counts(sql=1, redis=3.5)}

    table = render(rows, results, counts, [88.24, 90.0], "test machine")

    assert table.splitlines()[0] == "Machine: test machine"
    assert "| delete | 1,234 | 1.00 | 9.50 | 204: 900, 404: 2, 503: 1 | 3 | n/a | 5 | 2 |" in table
    assert "| mix | 1,234 | 1.00 | 9.50 | 200: 1,000 | 0 | 72.5% | n/a | n/a |" in table
    assert "| miss | — | — | — | — | — | — | 1 | 3.5 |" in table
    assert table.endswith("(VmRSS, MiB): 88.2, 90.0\n")


def test_render_says_which_rows_were_run_again():
    rows = [Row("delete", None, None)]
    results = {"delete": {"rps": 1.0, "p50": 1.0, "p99": 1.0, "statuses": {}, "hit_ratio": None}}

    table = render(rows, results, {}, [90.0], "test machine", {"delete": 2, "mix": 0})

    assert table.endswith("one worker having taken most connections: delete 2\n")


def test_a_row_run_again_gets_a_fresh_environment_and_its_after_step(monkeypatch):
    """A delete row's ids are used up by its run: a rerun must reserve new ones."""
    balances = iter([0.1, 0.9])
    monkeypatch.setattr(
        "bench.rows.measured_wrk", lambda *args, **env: {"worker_balance": next(balances), **env}
    )
    environments, afters = iter([{"BENCH_FIRST_ID": "1"}, {"BENCH_FIRST_ID": "2"}]), []
    load = Load("writes.lua", lambda: next(environments), lambda: afters.append(1))

    found = load.run(meter=None, server=type("S", (), {"url": "u"})())

    assert (found["BENCH_FIRST_ID"], found["reruns"], len(afters)) == ("2", 1, 2)


@pytest.mark.parametrize(
    ("query", "round_trips"),
    [
        ("", 0),  # the anonymous shortcut: the throttle's counter rides on the given read
        ("?format=json", 1),  # DRF's path: the throttle counts in a round trip of its own
    ],
)
def test_a_read_with_its_answer_given_does_not_read_the_cache(stored_item, query, round_trips):
    """What bench/hit_path_cpu.py and bench/instructions.py measure as a hit without Redis."""
    from backend.wsgi import application
    from bench.given_read import read_given
    from items.cache import read_item

    read(stored_item.pk)()
    answer = read_item(stored_item.pk)
    path = f"/api/items/{stored_item.pk}/{query}"

    with read_given(lambda item_id: answer), counting() as counter:
        status, headers, body = wsgi_request(application, "GET", path)

    assert (status, headers["X-Cache"]) == ("200 OK", "HIT")
    assert body == answer[0].body
    assert counter.redis == round_trips
