"""Compare mode: p99 and max-rate-under-SLO deltas (after - before) per matching cell and sweep line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder

from analysis import write_report


def _sweep(root: Path, p99s: dict[float, float]) -> ResultsBuilder:
    builder = ResultsBuilder(root)
    for rate, p99 in p99s.items():
        builder.cell(rate=rate, latency_ms=p99)
    return builder


def test_deltas_between_two_results_directories(tmp_path: Path) -> None:
    """before: 10/s 20 ms, 20/s 50 ms, 40/s 200 ms -> max 20/s.
    after:  10/s 15 ms, 20/s 40 ms, 40/s 80 ms, 80/s 300 ms -> max 40/s.
    p99 deltas: 10/s -5 ms (-25 %), 20/s -10 ms (-20 %), 40/s -120 ms (-60 %), 80/s unmatched -> null.
    max rate delta: +20/s (+100 %)."""
    before = _sweep(tmp_path / "before", {10: 20.0, 20: 50.0, 40: 200.0})
    after = _sweep(tmp_path / "after", {10: 15.0, 20: 40.0, 40: 80.0, 80: 300.0})
    summary = json.loads(write_report(after.root, compare_with=before.root, plots=False).json.read_text())
    comparison = summary["comparison"]
    assert (comparison["before"], comparison["after"]) == ("before", "after")
    deltas = [(d["before"], d["after"], d["delta"], d["delta_percent"]) for d in comparison["p99_ms"]]
    assert deltas[:3] == [
        (20.0, 15.0, pytest.approx(-5.0), pytest.approx(-25.0)),
        (50.0, 40.0, pytest.approx(-10.0), pytest.approx(-20.0)),
        (200.0, 80.0, pytest.approx(-120.0), pytest.approx(-60.0)),
    ]
    assert deltas[3] == (None, 300.0, None, None)
    (rate,) = comparison["max_rate_under_slo"]
    assert (rate["before"], rate["after"], rate["delta"], rate["delta_percent"]) == (20.0, 40.0, 20.0, 100.0)


def test_comparison_appears_in_the_html_and_markdown(tmp_path: Path) -> None:
    before = _sweep(tmp_path / "before", {10: 20.0})
    after = _sweep(tmp_path / "after", {10: 15.0})
    paths = write_report(after.root, compare_with=before.root, plots=False)
    assert "Comparison: before (before) → after (after)" in paths.html.read_text()
    assert (
        "| torchserve grpc [default] batch 1 @ 10/s | 20 [20–20] | 15 [15–15] | -5 | -25 | better |"
        in paths.markdown.read_text()
    )


def test_without_compare_the_comparison_is_null(tmp_path: Path) -> None:
    after = _sweep(tmp_path / "after", {10: 15.0})
    assert json.loads(write_report(after.root, plots=False).json.read_text())["comparison"] is None
