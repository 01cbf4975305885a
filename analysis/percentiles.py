"""Exact percentiles from raw samples (never from buckets: a p99 verdict must come from lossless data).

Method: nearest rank, defined once in `loadtest._percentiles` (the generator's own lateness p99 uses
it too): the p-th percentile is the sorted sample at 1-based rank ceil(p/100 * n), always an observed
value, never an interpolation. Example: samples 1..1000 ms give p50 = 500, p90 = 900, p99 = 990,
p99.9 = 999, max = 1000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loadtest._percentiles import nearest_rank as _nearest_rank
from loadtest._percentiles import nearest_rank_index, percentile

__all__ = [
    "CONFIDENCE",
    "REPORTED_PERCENTILES",
    "Percentiles",
    "QuantileInterval",
    "min_samples",
    "percentile",
    "quantile_interval",
]

REPORTED_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Percentiles:
    """Distribution summary of one quantity, in milliseconds (None when there were no samples)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    p999: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, samples_ms: npt.ArrayLike) -> Percentiles:
        values = np.sort(np.asarray(samples_ms, dtype=np.float64), axis=None)
        if values.size == 0:
            return cls(0, None, None, None, None, None, None)
        p50, p90, p99, p999 = (_nearest_rank(values, p) for p in REPORTED_PERCENTILES)
        return cls(int(values.size), p50, p90, p99, p999, float(values.max()), float(values.mean()))


CONFIDENCE = 0.95  # every interval in the reports is two-sided at this level


def min_samples(p: float, confidence: float = CONFIDENCE) -> int | None:
    """The fewest samples for which the p-th percentile has a two-sided distribution-free interval.

    The rule (stated in the reports): the interval's ends are order statistics, so both must exist.
    The upper end exists when P(all n samples fall below the true quantile) = q^n <= (1 - confidence) / 2,
    the lower end when (1 - q)^n <= (1 - confidence) / 2. For p99 at 95 %: n >= 368; p50: 6; p90: 36;
    p99.9: 3,688. None for p = 0 or 100 (the extremes have no such interval).
    """
    q = p / 100.0
    if not 0.0 < q < 1.0:
        return None
    tail = (1.0 - confidence) / 2.0
    need = 1
    for side in (q, 1.0 - q):
        n = max(1, math.ceil(math.log(tail) / math.log(side)))
        while side**n > tail:  # guard the float rounding of the logarithms, both ways
            n += 1
        while n > 1 and side ** (n - 1) <= tail:
            n -= 1
        need = max(need, n)
    return need


@dataclass(frozen=True)
class QuantileInterval:
    """A nearest-rank percentile of one run with its exact, distribution-free confidence interval.

    `low`/`high` are the observed samples at 1-based ranks `low_rank`/`high_rank`; the true quantile
    lies in [low, high] with probability `achieved` >= the nominal confidence, for any continuous
    latency distribution (from Binomial(n, q): the count of samples below the true quantile).
    `enough` is False when n < `min_samples`: then `high` is None (no order statistic is high enough)
    and the percentile is not reported; `low` may still exist and can prove a miss.
    """

    p: float
    n: int
    value: float | None
    low: float | None
    high: float | None
    low_rank: int | None
    high_rank: int | None
    confidence: float
    achieved: float | None
    needed: int | None

    @property
    def enough(self) -> bool:
        return self.needed is not None and self.n >= self.needed and self.high is not None


def quantile_interval(samples: npt.ArrayLike, p: float, confidence: float = CONFIDENCE) -> QuantileInterval:
    """The p-th percentile (nearest rank) of `samples` with its order-statistic confidence interval.

    Ranks: with B ~ Binomial(n, q), the lower rank l is the largest with P(B <= l - 1) <= alpha / 2 and
    the upper rank u the smallest with P(B <= u - 1) >= 1 - alpha / 2; coverage = P(l <= B <= u - 1).
    Both are widened, if needed, to contain the point estimate's rank (nearest-rank consistency).
    """
    from scipy import stats as scipy_stats

    values = np.sort(np.asarray(samples, dtype=np.float64), axis=None)
    n = int(values.size)
    needed = min_samples(p, confidence)
    if n == 0:
        return QuantileInterval(p, 0, None, None, None, None, None, confidence, None, needed)
    q = p / 100.0
    point_rank = nearest_rank_index(p, n)
    value = float(values[point_rank - 1])
    if not 0.0 < q < 1.0:
        return QuantileInterval(p, n, value, None, None, None, None, confidence, None, needed)
    tail = (1.0 - confidence) / 2.0
    binom = scipy_stats.binom(n, q)
    # lower: largest k = l - 1 with cdf(k) <= tail (k = -1, i.e. no lower end, when cdf(0) > tail)
    k = int(binom.ppf(tail))
    if binom.cdf(k) > tail:
        k -= 1
    low_rank: int | None = k + 1 if k >= 0 else None
    # upper: smallest k = u - 1 with cdf(k) >= 1 - tail; the upper end exists when u <= n
    k = int(binom.ppf(1.0 - tail))
    while k > 0 and binom.cdf(k - 1) >= 1.0 - tail:
        k -= 1
    high_rank: int | None = k + 1 if k + 1 <= n else None
    if low_rank is not None:
        low_rank = min(low_rank, point_rank)
    if high_rank is not None:
        high_rank = max(high_rank, point_rank)
    below = binom.cdf(low_rank - 1) if low_rank is not None else 0.0
    above = binom.cdf(high_rank - 1) if high_rank is not None else 1.0
    return QuantileInterval(
        p=p,
        n=n,
        value=value,
        low=float(values[low_rank - 1]) if low_rank is not None else None,
        high=float(values[high_rank - 1]) if high_rank is not None else None,
        low_rank=low_rank,
        high_rank=high_rank,
        confidence=confidence,
        achieved=float(above - below),
        needed=needed,
    )
