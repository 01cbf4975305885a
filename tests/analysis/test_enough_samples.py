"""A percentile is reported only when the cell holds enough requests for it; verdicts never rest on one
that does not. Rule: both ends of the percentile's exact 95 % order-statistic interval must exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import Request, ResultsBuilder, evenly, write_run

from analysis import read_results, write_report
from analysis.percentiles import min_samples, quantile_interval
from analysis.stats import Slo, summarize_run
from analysis.verdicts import sweep_verdicts


@pytest.mark.parametrize(
    ("p", "needed"),
    [
        # smallest n with q^n <= 2.5 % (upper end) and (1-q)^n <= 2.5 % (lower end)
        (50.0, 6),  # 0.5^6 = 1.6 % (0.5^5 = 3.1 %)
        (90.0, 36),  # 0.9^36 = 2.25 % (0.9^35 = 2.5002 %)
        (99.0, 368),  # 0.99^368 = 2.47 % (0.99^367 = 2.50 %)
        (99.9, 3688),
        (100.0, None),  # the maximum has no distribution-free interval
    ],
)
def test_minimum_requests_per_percentile(p: float, needed: int | None) -> None:
    assert min_samples(p) == needed


@pytest.mark.parametrize(("n", "enough"), [(367, False), (368, True)])
def test_a_run_needs_368_ok_requests_to_judge_p99(tmp_path: Path, n: int, enough: bool) -> None:
    summary = summarize_run(write_run(tmp_path / "run", evenly(n, 5.0)), Slo())
    assert summary.measured.slo.interval is not None and summary.measured.slo.interval.enough is enough
    assert summary.measured.slo.status == ("met" if enough else "too few requests")
    assert summary.measured.slo.met is enough
    if not enough:
        assert summary.measured.slo.note == "too few requests for p99: 367 ok, 368 needed for a 95% interval"


def test_a_cell_with_too_few_requests_has_no_p99_and_no_verdict(results: ResultsBuilder) -> None:
    """100 requests at 10/s, all 5 ms: well within the SLO, but p99 cannot be judged from 100."""
    results.cell(rate=10, requests=evenly(100, 5.0))
    (cell,) = read_results(results.root).cells
    assert cell.p99.value is None and cell.p99_ms.mean is None
    assert cell.p99.note == "too few requests for p99: 100 ok, 368 needed for a 95% interval"
    assert (cell.slo_status, cell.met_slo) == ("too few requests", False)
    (verdict,) = sweep_verdicts([cell])
    assert verdict.max_rate_under_slo is None
    assert "too few requests for the SLO percentile at every usable rate" in (verdict.max_rate_note or "")
    summary = json.loads(write_report(results.root, plots=False).json.read_text())
    assert summary["cells"][0]["p99"]["value"] is None
    assert summary["cells"][0]["slo_status"] == "too few requests"
    assert "too few requests for p99" in (results.root / "summary.md").read_text()


def test_the_max_rate_walk_skips_cells_with_too_few_requests(results: ResultsBuilder) -> None:
    """10/s holds 100 requests (not judged); 40/s (400) met; 80/s (800, 250 ms) missed -> max 40/s."""
    results.cell(rate=10, requests=evenly(100, 5.0))
    results.cell(rate=40, latency_ms=20.0)
    results.cell(rate=80, latency_ms=250.0)
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert (verdict.max_rate_under_slo, verdict.first_miss_rate) == (40.0, 80.0)
    assert len(verdict.not_judged) == 1 and "@ 10/s: too few requests for p99" in verdict.not_judged[0]


def test_too_few_requests_still_prove_a_clear_miss(tmp_path: Path) -> None:
    """100 requests, every tenth at 500 ms (spread over the window, so its slices agree: no sign of
    correlation): the p99's lower bound (the 97th smallest, rank from Binomial(100, 0.99)) is already
    500 ms > 100 ms, so the run surely missed although p99 is unreported."""
    requests = [Request(r.at_ms, 500.0 if i % 10 == 9 else 5.0) for i, r in enumerate(evenly(100, 0.0))]
    summary = summarize_run(write_run(tmp_path / "run", requests), Slo())
    assert quantile_interval([r.latency_ms for r in requests], 99.0).low_rank == 97
    assert summary.measured.slo.status == "missed"
    assert "p99 surely > 100 ms" in summary.measured.slo.misses[0]


def test_one_slow_burst_in_a_short_window_proves_nothing(tmp_path: Path) -> None:
    """The same 10 slow requests, all in the window's last second: one busy episode, which the slices
    see (variance inflated ~10x), so 100 requests are worth ~10 independent ones and the window cannot
    tell whether such episodes are rare: neither a p99 nor a proven miss."""
    requests = [Request(r.at_ms, 500.0 if i >= 90 else 5.0) for i, r in enumerate(evenly(100, 0.0))]
    summary = summarize_run(write_run(tmp_path / "run", requests), Slo())
    interval = summary.measured.slo.interval
    assert interval is not None and interval.correlation is not None
    assert interval.correlation.inflation > 5 and interval.effective_n < 20
    assert summary.measured.slo.status == "too few requests"
    assert interval.low is not None and interval.low <= 5.0
