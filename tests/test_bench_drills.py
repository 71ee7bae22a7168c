"""The drills' and the soak's pieces: their own servers, the load, the judgement, the tables.

The drills themselves run in `make drills` (CI: the short ones); these check what can
be checked in seconds.
"""

import socket
import time

import pytest

from bench.drills import SHORT, Drill, judge, report, table
from bench.fleet import fleet, template
from bench.load import Answer, Load, Mix, first_window, hit_ratio_at_least, percentile
from bench.soak import keeps_growing


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_a_fleet_serves_a_checked_load_on_servers_of_its_own_and_stops_them_all():
    with template(items=200) as source:
        with fleet(source, servers=1, WEB_CONCURRENCY="1") as service:
            ports = [service.postgres.port, service.redis.port, service.servers[0].port]
            processes = [service.postgres.process, service.redis.process]
            processes.append(service.servers[0].process)
            assert not {5432, 6379} & set(ports)
            load = Load([service.servers[0].port], service.token, Mix([1, 2, 3], 0.3), rate=60)
            with load:
                time.sleep(2)
            rows = service.rows(load.history.acknowledged_ids)

        assert all(process.poll() is not None for process in processes)
        assert all(refuses(port) for port in ports)
    assert not source.data.exists()
    statuses = {answer.status for answer in load.answers}
    assert statuses == {200}, statuses
    assert {answer.cache for answer in load.answers if answer.method == "GET"} >= {"HIT"}
    assert load.history.acknowledged_ids, "no write was acknowledged"
    assert load.history.lost_writes(rows) == []
    assert load.history.reads > 0
    assert load.history.stale == []


def answer(sent, status=200, method="GET", phase="before", cache="HIT", fresh=True, latency=0.01):
    return Answer(0, method, "/api/items/1/", phase, sent, latency, status, cache, None, fresh)


def test_every_drill_fails_on_an_unexpected_5xx_a_stale_read_or_a_lost_write():
    answers = [
        answer(0.0, method="PATCH", cache=None, fresh=None),
        answer(1.0, phase="during", status=503),
        answer(2.0, phase="after"),
    ]
    database = Drill("database", answers, acknowledged=1)
    judge(database, database_drill=True, kill_drill=False)
    redis = Drill("redis", answers, acknowledged=1, stale_reads=2, lost_writes=1)
    judge(redis, database_drill=False, kill_drill=False)

    assert database.passed, database.failures
    assert redis.failures == [
        "1 unexpected 5xx answers",
        "1 acknowledged writes lost",
        "2 stale reads",
    ]


def test_a_drill_without_load_in_a_phase_fails():
    drill = Drill("idle", [answer(0.0, method="PATCH", cache=None)], acknowledged=1)
    judge(drill, database_drill=False, kill_drill=False)

    assert drill.failures == ["no request in the during phase", "no request in the after phase"]


def test_the_table_has_a_row_per_drill_and_the_report_says_why_one_failed():
    passed = Drill("passed", [answer(0.0, latency=0.02), answer(1.0, phase="during")])
    passed.recovery = "1.0 s to hit ratio ≥ 90%"
    failed = Drill("failed", [answer(0.0, status=500)], stale_reads=3, failures=["3 stale reads"])

    rows = table([passed, failed]).splitlines()
    text = report([passed, failed], SHORT, took=1)

    assert rows[2] == (
        "| passed | 2 | 0 | 0 | 0 of 0 | 0 | 20 / 10 / n/a | 1.0 s to hit ratio ≥ 90% | pass |"
    )
    assert rows[3].startswith("| failed | 1 | 1 | 0 | 0 of 0 | 3 |")
    assert rows[3].endswith("| FAIL |")
    assert "- failed: 3 stale reads" in text


def test_recovery_is_the_end_of_the_first_window_that_is_good():
    misses = [answer(10 + i / 10, cache="MISS") for i in range(30)]
    hits = [answer(13 + i / 10) for i in range(30)]

    # [12.9, 13.9): one miss, nine hits.
    assert first_window(misses + hits, 10.0, hit_ratio_at_least(0.9)) == pytest.approx(3.9)
    assert first_window(misses, 10.0, hit_ratio_at_least(0.9)) is None


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))

    assert percentile(values, 0.99) == 99
    assert percentile([5], 0.99) == 5
    assert percentile([], 0.99) is None


def test_a_series_that_levels_off_after_the_first_minute_is_not_growing():
    assert keeps_growing([50, 80, 81, 80, 82, 81, 81, 82, 81, 82], 0.05, 2.0) is False
    assert keeps_growing([16, 16, 16, 16, 16], 0.0, 1) is False


def test_a_series_still_rising_in_the_second_half_is_growing():
    assert keeps_growing([50 + 5 * minute for minute in range(10)], 0.05, 2.0) is True
    assert keeps_growing([16, 16, 17, 18, 19, 20], 0.0, 1) is True


def test_a_run_too_short_is_not_judged():
    assert keeps_growing([50, 60, 70], 0.05, 2.0) is None
