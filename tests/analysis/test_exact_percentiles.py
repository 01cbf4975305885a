"""Percentiles are exact nearest-rank samples: the smallest x with at least p % of the samples <= x."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.percentiles import Percentiles, percentile

ONE_TO_THOUSAND = np.arange(1, 1001, dtype=float)


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        # 1..1000 ms: rank ceil(p/100 * 1000) -> p50 = 500th value, p99 = 990th, p99.9 = 999th
        (ONE_TO_THOUSAND, 50.0, 500.0),
        (ONE_TO_THOUSAND, 90.0, 900.0),
        (ONE_TO_THOUSAND, 99.0, 990.0),
        (ONE_TO_THOUSAND, 99.9, 999.0),
        (ONE_TO_THOUSAND, 100.0, 1000.0),
        # 1..10: p50 = rank 5 -> 5; p99 = rank ceil(9.9) = 10 -> 10 (never interpolated to 9.91)
        (np.arange(1, 11, dtype=float), 50.0, 5.0),
        (np.arange(1, 11, dtype=float), 99.0, 10.0),
        # order does not matter: reversed 1..1000 still gives the 990th smallest
        (ONE_TO_THOUSAND[::-1], 99.0, 990.0),
        # one slow request in 100: p99 = rank 99 -> still fast; in 99 requests it is rank 99 -> the slow one
        (np.array([1.0] * 99 + [500.0]), 99.0, 1.0),
        (np.array([1.0] * 98 + [500.0]), 99.0, 500.0),
        # a single sample is every percentile
        (np.array([7.5]), 50.0, 7.5),
    ],
)
def test_percentile_is_the_nearest_rank_sample(samples: np.ndarray, p: float, expected: float) -> None:
    assert percentile(samples, p) == expected


def test_percentile_of_no_samples_is_none() -> None:
    assert percentile([], 99.0) is None


@pytest.mark.parametrize("p", [-1.0, 100.5])
def test_percentile_outside_0_to_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="within 0..100"):
        percentile([1.0, 2.0], p)


def test_summary_of_1_to_1000_ms() -> None:
    """p50 500, p90 900, p99 990, p99.9 999, max 1000, mean 500.5 (hand-worked, nearest rank)."""
    summary = Percentiles.of(ONE_TO_THOUSAND)
    assert (summary.count, summary.p50, summary.p90, summary.p99, summary.p999, summary.max) == (
        1000,
        500.0,
        900.0,
        990.0,
        999.0,
        1000.0,
    )
    assert summary.mean == pytest.approx(500.5)


def test_summary_of_shuffled_samples_matches_sorted_ranks() -> None:
    """A seeded permutation of 1..10,000 ms: p99 is the 9,900th value, p99.9 the 9,990th."""
    samples = np.random.default_rng(7).permutation(np.arange(1, 10_001, dtype=float))
    summary = Percentiles.of(samples)
    assert (summary.p50, summary.p99, summary.p999) == (5000.0, 9900.0, 9990.0)
