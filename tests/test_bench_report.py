"""`make bench` turns wrk's output into the table and the target ratios."""

import pytest

from bench import harness
from bench.harness import balanced_wrk, median_run, parse_duration_ms, parse_wrk, publish
from bench.run import (
    FLOOR,
    HOT,
    OUTERMOST,
    UNCACHED,
    UNTHROTTLED,
    ZIPF,
    report,
    summary,
)

# What wrk 4.1 printed for bench/reads.lua against a server that answered
# X-Cache: HIT to most requests and 404 to a few, with the STATUS lines bench/tally.lua adds.
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:18555
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    42.23ms    8.22ms  44.48ms   96.08%
    Req/Sec    46.36      9.24    60.00     72.73%
  Latency Distribution
     50%   43.96ms
     75%   44.00ms
     90%   44.04ms
     99%    1.20s
  51 requests in 1.10s, 6.93KB read
  Non-2xx or 3xx responses: 2
Requests/sec:     46.32
Transfer/sec:      6.30KB
HIT_RATIO 0.9608
STATUS 200 49
STATUS 404 2
"""


def test_parse_wrk_reads_throughput_latency_errors_and_hits():
    assert parse_wrk(WRK_OUTPUT) == {
        "requests": 51,
        "rps": 46.32,
        "p50": 43.96,
        "p99": 1200.0,
        "hit_ratio": 0.9608,
        "non_2xx": 2,
        "statuses": {200: 49, 404: 2},
    }


def test_parse_wrk_without_the_script_lines():
    """The floor has no X-Cache to count, and a clean run prints no error line."""
    plain = WRK_OUTPUT.split("HIT_RATIO")[0].replace("  Non-2xx or 3xx responses: 2\n", "")
    found = parse_wrk(plain)
    assert (found["hit_ratio"], found["non_2xx"], found["statuses"]) == (None, 0, {})


@pytest.mark.parametrize(("text", "ms"), [("750.00us", 0.75), ("6.86ms", 6.86), ("1.20s", 1200)])
def test_parse_duration_ms(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


def test_median_run_keeps_one_run_whole():
    runs = [{"rps": 300, "p99": 1}, {"rps": 100, "p99": 2}, {"rps": 200, "p99": 3}]
    assert median_run(runs) == {"rps": 200, "p99": 3}


def _run(rps: float, p99: float, hit_ratio: float | None = 1.0) -> dict:
    cpu = {"service": 500.0, "redis": 40.0, "postgres": None, "wrk": 30.0}
    return {"rps": rps, "p50": 1.0, "p99": p99, "hit_ratio": hit_ratio, "non_2xx": 0, "cpu_us": cpu}


@pytest.fixture
def results_file(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.run.machine", lambda: "test machine")
    monkeypatch.setattr("bench.run.RESULTS", tmp_path / "run.md")
    return tmp_path / "run.md"


def _rounds() -> dict[str, list[dict]]:
    return {
        HOT: [_run(2000, 10), _run(3000, 30)],
        UNCACHED: [_run(1000, 20), _run(1000, 20)],
        ZIPF: [_run(1000, 20, 0.5), _run(1000, 20, 0.5)],
        FLOOR: [_run(2500, 10, None), _run(4000, 20, None)],
        OUTERMOST: [_run(5000, 5, None), _run(6000, 5, None)],
        UNTHROTTLED: [_run(2500, 10), _run(2500, 10)],
    }


def test_report_prints_the_ratios_of_the_medians_and_of_each_round(capsys, results_file):
    rounds = _rounds()
    # The reported run of each scenario, as main() picks it for a table of one round.
    results = {name: found[0] for name, found in rounds.items()}

    report(results, rounds)

    out = capsys.readouterr().out
    assert f"| {HOT} | 2,000 | 1.00 | 10.00 | 100.0% | 0 | 500 | 40 | n/a | 30 |" in out
    assert f"| {FLOOR} | 2,500 | 1.00 | 10.00 | n/a | 0 |" in out
    assert "cached / uncached throughput: 2.00 (target >= 2.50; per round: 2.00, 3.00)" in out
    assert "cached / floor throughput: 80% (target >= 70%; per round: 80%, 75%)" in out
    assert "cached p99 / floor p99: 1.00 (target <= 1.50; per round: 1.00, 1.50)" in out
    assert "cached / outermost answer throughput: 0.40 (per round: 0.40, 0.50)" in out
    assert "Zipf / hot cached throughput: 50%" in out
    assert "throttle on / off, cached throughput: 80%" in out
    assert out.strip() in results_file.read_text()


def test_the_targets_hold_when_the_median_meets_them_and_no_run_falls_10_percent_short(
    results_file,
):
    def run(hot_rps: float) -> dict[str, dict]:
        rounds = _rounds()
        rounds[HOT][0]["rps"] = hot_rps
        return {name: found[0] for name, found in rounds.items()}

    # cached / uncached: 2.6, 2.5, 2.3 (8 % short), 2.7, 2.55: median 2.55, met.
    met = summary([run(rps) for rps in (2600, 2500, 2300, 2700, 2550)])
    # 2.2 is 12 % short of 2.5: not met, though the median is 2.55.
    missed = summary([run(rps) for rps in (2600, 2500, 2200, 2700, 2550)])

    assert (
        "| cached / uncached throughput | 2.60 | 2.50 | 2.30 | 2.70 | 2.55 | 2.55 | >= 2.50 | yes |"
        in met
    )
    assert (
        "| cached / uncached throughput | 2.60 | 2.50 | 2.20 | 2.70 | 2.55 | 2.55 | >= 2.50 | no |"
        in missed
    )


@pytest.mark.parametrize(
    ("balances", "kept", "reruns"),
    [
        ([0.9], 0.9, 0),
        ([0.1, 0.8], 0.8, 1),
        ([0.1, 0.2, 0.3, 0.9], 0.3, 2),  # at most two more: the third is kept, and says so
        ([None], None, 0),  # one worker: nothing to balance
    ],
)
def test_a_round_one_worker_served_alone_is_run_again(monkeypatch, balances, kept, reruns):
    answers = iter(balances)
    monkeypatch.setattr(
        "bench.harness.measured_wrk", lambda *args, **env: {"worker_balance": next(answers)}
    )

    found = balanced_wrk(meter=None, server=type("S", (), {"url": "u"})(), script=None, env={})

    assert (found["worker_balance"], found["reruns"]) == (kept, reruns)


def test_the_report_says_which_rows_were_run_again(capsys, results_file):
    rounds = _rounds()
    rounds[FLOOR][1]["reruns"] = 2
    report({name: found[0] for name, found in rounds.items()}, rounds)

    assert f"rounds run again, one worker having taken most connections: {FLOOR} 2" in (
        capsys.readouterr().out
    )


def test_publish_prints_the_report_and_writes_it_with_one_final_newline(tmp_path, capsys):
    path = tmp_path / "results" / "x.md"

    publish("| a |\n", path)

    assert path.read_text() == "| a |\n"
    assert capsys.readouterr().out == "\n| a |\n\n"


@pytest.mark.parametrize("gone", [FileNotFoundError, ProcessLookupError])
def test_a_child_that_exits_while_the_meter_reads_it_is_left_out(monkeypatch, gone):
    """A PostgreSQL backend whose connection closed can vanish between the listing and the read."""

    def cpu_seconds(pid: int) -> float:
        if pid == 2:
            raise gone()
        return 1.5

    monkeypatch.setattr(harness, "children", lambda pid: [2, 3])
    monkeypatch.setattr(harness, "cpu_seconds", cpu_seconds)

    assert harness.tree_cpu_seconds(1) == 3.0
