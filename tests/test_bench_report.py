"""`make bench` turns wrk's output into the table and the target ratios."""

import pytest

from bench.harness import median_run, parse_duration_ms, parse_wrk
from bench.run import report

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


def test_report_prints_the_ratios_of_the_medians_and_of_each_round(capsys, monkeypatch):
    monkeypatch.setattr("bench.run.machine", lambda: "test machine")
    runs = {
        "hot": [_run(2000, 10), _run(3000, 30)],
        "uncached": [_run(1000, 20), _run(1000, 20)],
        "zipf": [_run(1000, 20, 0.5), _run(1000, 20, 0.5)],
        "floor": [_run(2500, 10, None), _run(4000, 20, None)],
        "throttled": [_run(1500, 10), _run(1500, 10)],
    }
    # The reported run of each scenario, as main() picks it for a table of one round.
    results = {name: found[0] for name, found in runs.items()}

    report(results, runs)

    out = capsys.readouterr().out
    assert "| hot | 2,000 | 1.00 | 10.00 | 100.0% | 0 | 500 | 40 | n/a | 30 |" in out
    assert "| floor | 2,500 | 1.00 | 10.00 | n/a | 0 |" in out
    assert "cached / uncached throughput: 2.00x (target >= 2.5x; per round: 2.00, 3.00)" in out
    assert "cached / floor throughput: 80% (target >= 70%; per round: 80%, 75%)" in out
    assert "cached p99 / floor p99: 1.00x (target <= 1.5x; per round: 1.00, 1.50)" in out
    assert "Zipf / hot cached throughput: 50%" in out
    assert "throttled / unthrottled cached throughput: 75%" in out
