"""A cell's whole latency distribution compared between two runs: a rank test over time slices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.distributions import MIN_SLICES, _critical_rank, holm, shift, slice_log_means
from analysis.queues import Queue


def test_slice_means_are_per_time_slice() -> None:
    """Window 0..10 s in 10 slices; requests at 0.5 s (1 ms, e^0) and 0.6 s (e^2 ms) share slice 0 ->
    mean log 1.0; one at 9.5 s of e ms -> 1.0; the 8 empty slices are left out."""
    values = slice_log_means([1.0, math.e**2, math.e], [0.5, 0.6, 9.5], (0.0, 10.0))
    assert values == pytest.approx((1.0, 1.0))


def test_the_critical_ranks_match_the_mann_whitney_tables() -> None:
    """Two-sided 5 % critical U: 2 for 5 + 5, 23 for 10 + 10; the interval's ends are the next ranks."""
    assert (_critical_rank(5, 5), _critical_rank(10, 10)) == (3, 24)


def test_a_uniform_slowdown_is_measured_and_significant() -> None:
    rng = np.random.default_rng(5)
    before = list(rng.normal(math.log(10.0), 0.05, 10))
    after = list(rng.normal(math.log(13.0), 0.05, 10))
    result = shift(before, after)
    assert result is not None
    assert result.p_value == pytest.approx(2 / math.comb(20, 10))  # every after slice above every before
    assert result.low is not None and result.high is not None
    assert result.low < 1.3 < result.high and result.ratio == pytest.approx(1.3, abs=0.05)
    assert result.describe().startswith(f"latency x{result.ratio:.2f} [")


def test_too_few_slices_give_no_test() -> None:
    assert shift([1.0] * (MIN_SLICES - 1), [1.0] * 10) is None


def test_holm_adjusts_step_down() -> None:
    """p = 0.01, 0.04, 0.03, 0.005 (4 tests): sorted 0.005x4 = 0.02, 0.01x3 = 0.03, 0.03x2 = 0.06,
    0.04x1 -> 0.06 (monotone)."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_a_a_windows_of_a_busy_queue_rarely_differ() -> None:
    """Statistical check of the slice assumption: pairs of independent 20 s windows of one M/M/1 queue at
    50 % (requests correlated within a window), 300 pairs: the rank test at 5 % calls them different in
    about 5 % of pairs (at most 10 %), where a rank test over the single requests would call many."""
    queue = Queue.at("M/M/1", 100.0, 0.5)
    windows = list(queue.windows(20.0, 600, seed=17))
    rejected = per_request_rejected = 0
    from scipy import stats

    for before, after in zip(windows[0::2], windows[1::2], strict=True):
        b = slice_log_means(before[1], before[0], (0.0, 20.0))
        a = slice_log_means(after[1], after[0], (0.0, 20.0))
        result = shift(b, a)
        assert result is not None
        rejected += result.p_value < 0.05
        per_request_rejected += stats.mannwhitneyu(before[1], after[1]).pvalue < 0.05
    assert rejected / 300 <= 0.10
    assert per_request_rejected / 300 > 0.25  # what the slices protect against
