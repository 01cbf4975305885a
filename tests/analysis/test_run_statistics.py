"""One run's statistics: the steady window, throughput, goodput, failure rates and the SLO check."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_results import Request, evenly, write_run

from analysis.stats import Slo, summarize_run

SLO = Slo(percentile=99.0, latency_ms=100.0, max_failure_rate=0.01)


def test_throughput_counts_ok_responses_in_the_window(tmp_path: Path) -> None:
    """1,000 ok requests over a 10 s window, 5 ms each -> 100 requests/s; batch 4 -> 400 predictions/s.

    200 warm-up requests scheduled (and done) before the window start are excluded from every number.
    """
    warmup = [Request(-2000 + i * 10, 1.0) for i in range(200)]
    run_dir = write_run(tmp_path / "run", warmup + evenly(1000, 5.0), batch=4)
    summary = summarize_run(run_dir, SLO)
    assert summary.measured.window_s == 10.0
    assert summary.measured.scheduled == 1000
    assert summary.measured.ok == 1000
    assert summary.measured.throughput_rps == pytest.approx(100.0)
    assert summary.measured.predictions_per_s == pytest.approx(400.0)
    assert summary.measured.latency_ms.p50 == pytest.approx(5.0)
    assert summary.measured.slo.met


def test_latency_and_service_time_are_measured_from_scheduled_and_sent(tmp_path: Path) -> None:
    """Every request waited 30 ms in the generator and took 20 ms at the server:
    latency (done - scheduled) = 50 ms, service time (done - sent) = 20 ms, lateness = 30 ms."""
    requests = [Request(r.at_ms, 50.0, "ok", lateness_ms=30.0) for r in evenly(100, 50.0)]
    summary = summarize_run(write_run(tmp_path / "run", requests), SLO)
    assert summary.measured.latency_ms.p99 == pytest.approx(50.0)
    assert summary.measured.service_ms.p99 == pytest.approx(20.0)
    assert summary.measured.lateness_ms.p50 == pytest.approx(30.0)


def test_responses_completing_after_the_window_do_not_count_as_throughput(tmp_path: Path) -> None:
    """100 requests over 10 s, each taking 5 s: only the 50 scheduled in the first 5 s finish inside the
    window -> throughput 5/s, although all 100 were scheduled (offered 10/s)."""
    summary = summarize_run(write_run(tmp_path / "run", evenly(100, 5000.0)), SLO)
    assert summary.measured.scheduled == 100
    assert summary.measured.throughput_rps == pytest.approx(5.0)
    assert not summary.measured.slo.met


@pytest.mark.parametrize(
    ("slow", "expected_throughput", "expected_goodput"),
    [
        # 1,000 requests, one per 10 ms over 10 s; the first `slow` take 150 ms (> 100 ms SLO), the rest 5 ms
        (0, 100.0, 100.0),
        (100, 100.0, 90.0),  # 900 within the SLO / 10 s
        # all slow: the 15 scheduled from 9,850 ms on finish after the window -> 985 / 10 s
        (1000, 98.5, 0.0),
    ],
)
def test_goodput_counts_only_ok_responses_within_the_slo(
    tmp_path: Path, slow: int, expected_throughput: float, expected_goodput: float
) -> None:
    requests = [Request(r.at_ms, 150.0 if i < slow else 5.0) for i, r in enumerate(evenly(1000, 0.0))]
    summary = summarize_run(write_run(tmp_path / "run", requests), SLO)
    assert summary.measured.throughput_rps == pytest.approx(expected_throughput)
    assert summary.measured.goodput_rps == pytest.approx(expected_goodput)


@pytest.mark.parametrize(
    ("errors", "timeouts", "dropped", "error_rate", "drop_rate", "met"),
    [
        # out of 1,000 scheduled requests; the SLO allows errors + drops <= 1 %
        (0, 0, 0, 0.0, 0.0, True),
        (5, 5, 0, 0.01, 0.0, True),  # 10 failures = 1.0 %: at the limit, still met
        (10, 0, 10, 0.01, 0.01, False),  # 2 % in all
        (0, 0, 50, 0.0, 0.05, False),
    ],
)
def test_error_and_drop_rates(
    tmp_path: Path, errors: int, timeouts: int, dropped: int, error_rate: float, drop_rate: float, met: bool
) -> None:
    statuses = ["error"] * errors + ["timeout"] * timeouts + ["dropped"] * dropped
    requests = [
        Request(r.at_ms, 10.0, statuses[i] if i < len(statuses) else "ok")
        for i, r in enumerate(evenly(1000, 0.0))
    ]
    summary = summarize_run(write_run(tmp_path / "run", requests), SLO)
    assert summary.measured.error_rate == pytest.approx(error_rate)
    assert summary.measured.drop_rate == pytest.approx(drop_rate)
    assert summary.measured.ok == 1000 - errors - timeouts - dropped
    assert summary.measured.slo.met is met


def test_failures_are_not_latencies(tmp_path: Path) -> None:
    """5 errors that took 10 s do not move the latency percentiles of the 995 ok requests (10 ms)."""
    requests = [
        Request(r.at_ms, 10_000.0 if i < 5 else 10.0, "error" if i < 5 else "ok")
        for i, r in enumerate(evenly(1000, 0.0))
    ]
    summary = summarize_run(write_run(tmp_path / "run", requests), SLO)
    assert summary.measured.latency_ms.max == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("p99_latency_ms", "met"),
    [(100.0, True), (100.5, False)],  # the bound is inclusive: p99 <= 100 ms
)
def test_slo_is_judged_on_the_slo_percentile(tmp_path: Path, p99_latency_ms: float, met: bool) -> None:
    """1,000 requests: 989 at 1 ms, 11 at `p99_latency_ms` (every 90th, spread over the window) -> the
    990th-ranked latency is `p99_latency_ms`."""
    requests = [
        Request(r.at_ms, p99_latency_ms if i % 90 == 89 else 1.0) for i, r in enumerate(evenly(1000, 0.0))
    ]
    summary = summarize_run(write_run(tmp_path / "run", requests), SLO)
    assert summary.measured.slo.latency_ms == pytest.approx(p99_latency_ms)
    assert summary.measured.slo.met is met
    if not met:
        assert "p99 100.5 ms > 100 ms" in summary.measured.slo.misses[0]


def test_generator_validity_comes_from_load_json(tmp_path: Path) -> None:
    run_dir = write_run(
        tmp_path / "run",
        evenly(100, 1.0),
        valid=False,
        invalid_reasons=["generator lateness p99 12 ms is above the limit"],
    )
    summary = summarize_run(run_dir, SLO)
    assert summary.generator_valid is False
    assert summary.invalid_reasons == ("generator lateness p99 12 ms is above the limit",)
    assert not summary.usable


def test_a_run_without_load_json_is_not_usable(tmp_path: Path) -> None:
    summary = summarize_run(write_run(tmp_path / "run", evenly(100, 1.0), valid=None), SLO)
    assert summary.generator_valid is None
    assert "no load.json" in summary.exclusion_reasons[0]
