"""A percentile's interval from one window must hold the truth on data like ours: queue latencies, which
are correlated (busy periods). Seeded simulated queues with known p99s (analysis/queues.py); the full
grid, with the demo's windows, is benchmarks/interval_coverage.py."""

from __future__ import annotations

from analysis.queues import Queue, exact_method, measure_coverage, window_method


def test_the_interval_for_independent_samples_misses_in_a_queue() -> None:
    """The issue's finding: 40 s windows of M/M/1 with service at 100/s. At 80/s the exact interval,
    which takes requests as independent, holds the true p99 in well under half of 120 windows (the issue
    measured 16 %), and at 50/s in under four fifths (54 %)."""
    at_80 = measure_coverage(exact_method, Queue("M/M/1", 80.0, 100.0), 40.0, 120, seed=1)
    at_50 = measure_coverage(exact_method, Queue("M/M/1", 50.0, 100.0), 40.0, 120, seed=2)
    assert at_80.two_sided == 120 and at_80.rate < 0.45
    assert at_50.two_sided == 120 and at_50.rate < 0.80


def test_the_window_interval_holds_the_truth_where_it_reports() -> None:
    """320/s for 60 s (19,200 requests) at 50 % utilisation, 150 windows per queue: the interval for
    dependent samples reports p99 in most windows, and holds the true p99 in at least 90 % of all and of
    those that reported (promised: 95 %)."""
    for kind in ("M/M/1", "M/D/1"):
        result = measure_coverage(window_method, Queue.at(kind, 320.0, 0.5), 60.0, 150, seed=3)
        assert result.two_sided >= 0.8 * result.windows, (kind, result)
        assert result.rate >= 0.90 and (result.two_sided_rate or 0.0) >= 0.90, (kind, result)


def test_a_demo_step_near_saturation_is_too_few_rather_than_wrong() -> None:
    """A demo step at 320/s lasts 3 s (960 requests). At 80 % utilisation they are worth a few dozen
    independent ones, so the window interval withholds p99 ("too few") in nearly every window, and the
    lower bound it still states holds; the exact interval reports them all and mostly misses."""
    queue = Queue.at("M/M/1", 320.0, 0.8)
    window = measure_coverage(window_method, queue, 3.0, 200, seed=4)
    exact = measure_coverage(exact_method, queue, 3.0, 200, seed=4)
    assert window.two_sided <= 0.05 * window.windows and window.rate >= 0.90
    assert exact.two_sided == exact.windows and exact.rate < 0.5
