"""Each interval covers the truth at its stated rate: the construction repeated over many seeds, on
synthetic data of known spread, lands on the truth about as often as it says (binomial tolerance)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from synthetic_results import lognormal, write_run

from analysis.intervals import slice_rate_interval, t_interval
from analysis.percentiles import quantile_interval
from analysis.stats import Slo, summarize_run

MEDIAN_MS, SIGMA = 20.0, 0.5


def true_percentile(p: float) -> float:
    return MEDIAN_MS * math.exp(SIGMA * stats.norm.ppf(p / 100.0))


def within_binomial_tolerance(hits: int, trials: int, rate: float, sds: float = 4.0) -> bool:
    """|hits/trials - rate| within `sds` binomial standard deviations (a 4-sd miss: ~1 in 16,000)."""
    return abs(hits / trials - rate) <= sds * math.sqrt(rate * (1 - rate) / trials)


@pytest.mark.parametrize(("p", "n"), [(99.0, 400), (99.0, 2000), (90.0, 100), (50.0, 31)])
def test_order_statistic_interval_covers_the_true_percentile(p: float, n: int) -> None:
    """2,000 seeded lognormal samples of n latencies; the exact interval's stated coverage (>= 95 %,
    `achieved`, the same for every sample of size n) is met within a binomial tolerance."""
    truth, trials = true_percentile(p), 2000
    hits, achieved = 0, None
    for seed in range(trials):
        samples = np.random.default_rng(seed).lognormal(math.log(MEDIAN_MS), SIGMA, n)
        interval = quantile_interval(samples, p)
        assert interval.enough and interval.low is not None and interval.high is not None
        hits += interval.low <= truth <= interval.high
        achieved = interval.achieved
    assert achieved is not None and achieved >= 0.95
    assert within_binomial_tolerance(hits, trials, achieved), (hits / trials, achieved)


def test_the_p99_interval_of_synthetic_runs_covers_the_truth(tmp_path: Path) -> None:
    """The same through the whole reader: 100 synthetic runs (1,500 independent requests each, written
    as records and summarized). Their p99 interval is the one for dependent samples, which here finds
    little correlation but uses its upper bound (about 2.2 for an estimate of 1: 1,500 requests are
    worth about 700, past the 368 a p99 needs): it reports p99 in most runs and holds the true p99 at
    least at the promised rate."""
    truth, trials = true_percentile(99.0), 100
    hits = reported = 0
    for seed in range(trials):
        run_dir = write_run(tmp_path / f"run{seed}", lognormal(seed, 1500, median_ms=MEDIAN_MS, sigma=SIGMA))
        interval = summarize_run(run_dir, Slo()).measured.p99_interval
        assert interval is not None and interval.low is not None and interval.correlation is not None
        high = interval.high if interval.enough and interval.high is not None else math.inf
        hits += interval.low <= truth <= high
        reported += interval.enough
    assert reported >= 0.8 * trials
    assert hits / trials >= 0.95 - 4 * math.sqrt(0.95 * 0.05 / trials)


def test_student_t_interval_over_repetitions_covers_the_mean() -> None:
    """3 repetitions drawn from N(50, 5): the t interval holds 50 in 95 % of 4,000 draws."""
    rng = np.random.default_rng(1)
    trials = 4000
    hits = 0
    for _ in range(trials):
        low, high = t_interval(list(rng.normal(50.0, 5.0, 3))) or (math.inf, -math.inf)
        hits += low <= 50.0 <= high
    assert within_binomial_tolerance(hits, trials, 0.95)


def test_batch_means_interval_covers_a_poisson_rate() -> None:
    """Completions of a Poisson process at 80/s over 20 s: the batch-means interval holds 80/s at ~95 %."""
    rng = np.random.default_rng(2)
    trials, rate, window_ns = 2000, 80.0, 20 * 10**9
    hits = 0
    for _ in range(trials):
        times = np.sort(rng.uniform(0, window_ns, rng.poisson(rate * 20)))
        low, high = slice_rate_interval(times, (0, window_ns)) or (math.inf, -math.inf)
        hits += low <= rate <= high
    assert within_binomial_tolerance(hits, trials, 0.95)
