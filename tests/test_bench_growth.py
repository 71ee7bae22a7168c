"""`make bench-growth` reads its sizes, renders its table and draws its plot."""

import subprocess

import pytest

from bench import harness
from bench.growth import (
    CACHED_READ,
    LIST_PAGE,
    SORTED_FILTERED_PAGE,
    UNCACHED_READ,
    growth_lines,
    parse_sizes,
    plot,
    render_table,
    rerun_line,
    scenarios,
)
from tests.test_bench_report import WRK_OUTPUT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(rps: float, p99: float, hit_ratio: float | None = None, non_2xx: int = 0) -> dict:
    return {"rps": rps, "p50": p99 / 4, "p99": p99, "hit_ratio": hit_ratio, "non_2xx": non_2xx}


RESULTS = {
    10_000: {
        CACHED_READ: _run(1500, 20.0, 0.8),
        UNCACHED_READ: _run(1000, 30.0, 0.0),
        LIST_PAGE: _run(400, 50.0),
    },
    1_000_000: {
        CACHED_READ: _run(1200, 25.0, 0.6),
        UNCACHED_READ: _run(1000, 30.0, 0.0),
        LIST_PAGE: _run(20, 1500.0, non_2xx=3),
    },
}


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("10000,100000,1000000", [10_000, 100_000, 1_000_000]),
        (" 1_000 , 20000", [1_000, 20_000]),
    ],
)
def test_parse_sizes(text, sizes):
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("10k", "whole numbers"),
        ("10000,,20000", "whole numbers"),
        ("", "whole numbers"),
        ("10000,999", "at least 1,000 rows"),
    ],
)
def test_parse_sizes_refuses(text, complaint):
    with pytest.raises(SystemExit, match=complaint):
        parse_sizes(text)


def test_item_reads_draw_over_the_whole_table_and_list_pages_over_the_first_50():
    plan = scenarios(123_456)

    assert plan[CACHED_READ] == (
        "cached",
        {"BENCH_IDS": "123456", "BENCH_DISTRIBUTION": "zipf", "BENCH_ZIPF_S": harness.ZIPF_S},
    )
    assert plan[UNCACHED_READ][0] == "uncached"
    assert plan[UNCACHED_READ][1]["BENCH_IDS"] == "123456"
    for name in (LIST_PAGE, SORTED_FILTERED_PAGE):
        server, env = plan[name]
        assert server == "cached"
        assert env["BENCH_IDS"] == "50"
        assert env["BENCH_PATH"].endswith("page=")
        assert env["BENCH_SUFFIX"] == ""  # /api/items/?page=7, not ?page=7/
    assert "ordering=price" in plan[SORTED_FILTERED_PAGE][1]["BENCH_PATH"]


def test_render_table_has_a_row_per_size_and_request():
    lines = render_table(RESULTS).splitlines()

    assert lines[0] == "| rows | request | requests/s | p50 ms | p99 ms | X-Cache HIT | non-2xx |"
    assert len(lines) == 2 + 6
    assert f"| 10,000 | {CACHED_READ} | 1,500 | 5.00 | 20.00 | 80.0% | 0 |" in lines
    assert f"| 1,000,000 | {LIST_PAGE} | 20 | 375.00 | 1500.00 | n/a | 3 |" in lines


def test_growth_lines_compare_the_largest_size_with_the_smallest():
    lines = growth_lines(RESULTS)

    assert f"- {LIST_PAGE}: p99 30.00x, requests/s 0.05x from 10,000 to 1,000,000 rows" in lines
    assert f"- {UNCACHED_READ}: p99 1.00x, requests/s 1.00x from 10,000 to 1,000,000 rows" in lines
    assert growth_lines({10_000: RESULTS[10_000]}) == []


def test_rerun_line_names_the_sizes_whose_rounds_ran_again():
    assert rerun_line({10_000: 0, 1_000_000: 2}) == [
        "- rounds run again, one worker having taken most connections: 1,000,000 rows 2"
    ]
    assert rerun_line({10_000: 0, 1_000_000: 0}) == []


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "plots" / "growth.png"

    plot(RESULTS, path)

    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_wrk_passes_a_timeout_only_when_given(monkeypatch):
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=WRK_OUTPUT, stderr="")

    monkeypatch.setattr(harness.subprocess, "run", fake_run)

    harness.wrk("http://127.0.0.1:1/", timeout="30s")
    harness.wrk("http://127.0.0.1:1/")

    assert commands[0][-3:] == ["--timeout", "30s", "http://127.0.0.1:1/"]
    assert "--timeout" not in commands[1]
