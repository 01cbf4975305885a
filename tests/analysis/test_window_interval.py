"""The percentile interval for a window of correlated latencies: the exact interval on the sample's
effective size, the correlation estimated by batch means over time slices (loadtest/_percentiles.py)."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest._percentiles import (
    bound_factor,
    correlation,
    effective_ranks,
    quantile_interval,
    quantile_ranks,
    requests_needed,
    window_quantile_interval,
)


def test_the_inflation_is_an_upper_bound_on_what_the_slices_means_spread() -> None:
    """20 requests, two a second over 10 s: 0 ms for the first 5 s, 1 ms after (mean 0.5, variance 0.25).
    10 slices of 2: deviations of the slice sums +-1, Var(mean) = 10/9 x 10 / 20^2 = 0.0278, f = 0.0278 x
    20 / 0.25 = 2.22. f from 9 degrees of freedom is uncertain: the interval uses its 90 % upper bound,
    2.22 x 9 / chi2.ppf(0.10, 9) = 2.22 x 9 / 4.168 = 4.80. 5 slices of 4: sums 0 0 2 4 4 against 2 each,
    Var(mean) = 5/4 x 16 / 400 = 0.05, f = 4.0, bound 4.0 x 4 / chi2.ppf(0.10, 4) = 4.0 x 4 / 1.064."""
    times = np.arange(20) * 0.5 + 0.25
    values = (times >= 5.0).astype(float)
    result = correlation(values, times, (0.0, 10.0))
    assert (result.estimate, result.slices) == (pytest.approx(20 / 9), 10)
    assert result.inflation == pytest.approx(20 / 9 * 9 / 4.16816, rel=1e-4)
    both = correlation(values, times, (0.0, 10.0), slices=(10, 5))
    assert (both.estimate, both.slices) == (pytest.approx(4.0), 5)  # the larger bound counts
    assert both.inflation == pytest.approx(4.0 * 4 / 1.06362, rel=1e-4)


def test_independent_latencies_pay_the_bound_too() -> None:
    """2,000 independent latencies: the slices agree as independent samples do (f_hat about 1), yet f's
    upper bound, not f_hat, is used, at least 1: the window is worth n / f samples, fewer than 2,000, and
    its interval holds the exact one (independent samples' interval) inside it."""
    rng = np.random.default_rng(4)
    latencies = rng.lognormal(3.0, 0.5, 2000)
    times = np.sort(rng.uniform(0.0, 20.0, 2000))
    windowed = window_quantile_interval(latencies, times, (0.0, 20.0), 99.0)
    exact = quantile_interval(latencies, 99.0)
    assert windowed.correlation is not None
    assert windowed.correlation.estimate < 1.5 and windowed.correlation.inflation > 1.0
    assert windowed.correlation.inflation == pytest.approx(
        max(1.0, windowed.correlation.estimate * 9 / 4.16816), rel=1e-4)
    assert windowed.value == exact.value and windowed.enough
    assert windowed.low_rank is not None and exact.low_rank is not None
    assert windowed.high_rank is not None and exact.high_rank is not None
    assert windowed.low_rank <= exact.low_rank and windowed.high_rank >= exact.high_rank


@pytest.mark.parametrize("n", [36, 100, 368, 400, 1000, 4000])
@pytest.mark.parametrize("p", [50.0, 90.0, 99.0])
def test_effective_ranks_with_no_inflation_are_the_exact_ranks(n: int, p: float) -> None:
    exact = quantile_ranks(n, p)
    low, high = effective_ranks(n, 1.0, p)
    assert low == exact.low_rank
    assert high == exact.high_rank or (exact.high_rank is not None and high is not None
                                        and high <= exact.high_rank)  # exact may widen to the point


def test_a_heavily_correlated_window_is_worth_few_samples() -> None:
    """1,000 latencies worth 2 independent ones (f = 500): P(both below the true p99) = 0.99^2, so
    P(B <= 1) = 1 - 0.9801 = 0.0199 <= 2.5 %: one effective sample may lie below the lower end, which
    is then the sample at rank floor(500 x 1) + 1 = 501, the median. No upper end."""
    assert effective_ranks(1000, 500.0, 99.0) == (501, None)


def test_too_few_effective_samples_withhold_the_upper_end() -> None:
    """A window whose first half is 10 ms and second half 20 ms (a level shift: strongly correlated),
    2,000 requests: its p99 is not reported, though 2,000 independent ones would be plenty."""
    times = np.linspace(0.0, 20.0, 2000, endpoint=False)
    latencies = np.where(times < 10.0, 10.0, 20.0) + np.random.default_rng(1).uniform(0, 1, 2000)
    interval = window_quantile_interval(latencies, times, (0.0, 20.0), 99.0)
    assert interval.correlation is not None and interval.correlation.inflation > 100
    assert interval.effective_n < 368 and not interval.enough and interval.high is None
    assert interval.value is not None and interval.low is not None and interval.low <= interval.value


def test_a_window_needs_its_percentiles_minimum_times_the_inflation_it_will_be_judged_at() -> None:
    """Independent requests are still counted at the bound's x2.16 (9 / chi2.ppf(0.10, 9)), so p99 needs
    ceil(368 x 2.159) = 795 of them, never 368; at inflation 10, 3,680; p90 needs 36 x 10 = 360."""
    assert bound_factor() == pytest.approx(9 / 4.1682, rel=1e-3)
    assert requests_needed(99.0, 1.0) == 795
    assert requests_needed(99.0, 10.0) == 3680
    assert requests_needed(90.0, 10.0) == 360
    assert requests_needed(100.0, 10.0) is None

