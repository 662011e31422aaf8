"""The soak's table and percentiles (dev/bench/soak/report.py): pure, no processes."""

from __future__ import annotations

import pytest

from dev.bench.soak.report import Expectation, Section, percentile, render, spread_ms


def test_nearest_rank_percentiles() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.95) == 95.0
    assert percentile(samples, 1.0) == 100.0
    assert percentile([7.0], 0.5) == 7.0
    assert percentile([3.0, 1.0, 2.0], 0.0) == 1.0  # the smallest, not an index error


def test_percentile_of_nothing_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_spread_prints_milliseconds() -> None:
    assert spread_ms([0.1, 0.2, 3.5]) == "200 / 3500 / 3500 ms"
    assert spread_ms([]) == "n/a"


def test_a_section_passes_only_when_every_expectation_is_met() -> None:
    kept = Expectation("0 responses with status 500", True, "0")
    broken = Expectation("0 wrong answers", False, "3 wrong")
    assert Section("api", expectations=[kept]).passed
    assert not Section("api", expectations=[kept, broken]).passed


def test_render_shows_each_verdict_and_the_total() -> None:
    sections = [
        Section(
            "sign-in",
            figures=[("p50 / p95 / max", "1 / 2 / 3 ms")],
            expectations=[Expectation("none > 10 s", True, "max 3 ms")],
        ),
        Section("api", expectations=[Expectation("0 wrong answers", False, "2 wrong: GET /x as Viewer 200, want 403")]),
    ]
    table = render(sections, header="soak, reduced size")
    assert table.splitlines()[0] == "soak, reduced size"
    assert "== sign-in" in table and "1 / 2 / 3 ms" in table
    assert "[PASS] none > 10 s" in table
    assert "[FAIL] 0 wrong answers" in table and "GET /x as Viewer 200, want 403" in table
    assert table.splitlines()[-1] == "1/2 expectations met"
