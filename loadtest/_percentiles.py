"""The one percentile method of inferload: nearest rank, from raw samples.

The p-th percentile is the smallest sample x such that at least p % of the samples are <= x, i.e.
the sorted sample at 1-based rank ceil(p/100 * n) (what numpy calls `method="inverted_cdf"`; the
product is rounded to 9 decimals first, so floating-point noise cannot push 99.9 % of 1000 to rank
1000). It is always an observed value, never an interpolation, so a reported p99 is a latency some
request really had. Example: samples 1..1000 ms give p50 = 500, p90 = 900, p99 = 990, p99.9 = 999.

It lives here, in the load generator, because the generator judges its own lateness p99 (load.json)
and, with early stopping, the precision of a cell's SLO percentile while it runs, and must not import
analysis/; analysis.percentiles imports all of it from here, so there is one method and one interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inferload_formats import strict_fields

CONFIDENCE = 0.95  # every interval in the reports is two-sided at this level


def nearest_rank_index(p: float, n: int) -> int:
    """The 1-based rank of the nearest-rank p-th percentile among n > 0 sorted samples."""
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    # rounding first keeps 99.9 % of 1000 at rank 999 (binary floating point makes it 999.0000000000001)
    return max(1, math.ceil(round(p * n / 100.0, 9)))


def nearest_rank(sorted_values: np.ndarray, p: float) -> float:
    """The nearest-rank p-th percentile of already sorted, non-empty samples."""
    return float(sorted_values[nearest_rank_index(p, int(sorted_values.size)) - 1])


def percentile(samples: npt.ArrayLike, p: float) -> float | None:
    """The nearest-rank p-th percentile of `samples`, or None when there are none."""
    values = np.sort(np.asarray(samples, dtype=np.float64), axis=None)
    if values.size == 0:
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile must be within 0..100, got {p}")
        return None
    return nearest_rank(values, p)


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


def enough_samples(n: int, p: float, confidence: float = CONFIDENCE) -> bool:
    """The sample rule: a p-th percentile of n samples is reported only when n >= `min_samples(p)` (both
    ends of its interval exist); never for p = 0 or 100."""
    needed = min_samples(p, confidence)
    return needed is not None and n >= needed


@dataclass(frozen=True)
class QuantileRanks:
    """Where, among n sorted samples, the p-th percentile and its exact interval's ends lie (1-based).

    `low_rank` / `high_rank` are None when no order statistic is low / high enough (too few samples);
    `achieved` is the interval's exact coverage (None when p is 0 or 100).
    """

    n: int
    point_rank: int
    low_rank: int | None
    high_rank: int | None
    achieved: float | None


def quantile_ranks(n: int, p: float, confidence: float = CONFIDENCE) -> QuantileRanks:
    """The ranks of the nearest-rank p-th percentile of n > 0 samples and of its order-statistic interval.

    With B ~ Binomial(n, q) the count of samples below the true quantile, the lower rank l is the largest
    with P(B <= l - 1) <= alpha / 2 and the upper rank u the smallest with P(B <= u - 1) >= 1 - alpha / 2;
    coverage = P(l <= B <= u - 1). Both are widened, if needed, to contain the point estimate's rank
    (nearest-rank consistency). Ranks only: callers pick the samples (a sort, or a partial sort).
    """
    from scipy import stats as scipy_stats

    point_rank = nearest_rank_index(p, n)
    q = p / 100.0
    if not 0.0 < q < 1.0:
        return QuantileRanks(n, point_rank, None, None, None)
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
    return QuantileRanks(n, point_rank, low_rank, high_rank, float(above - below))


@strict_fields
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
        """The sample rule (`enough_samples`), with the upper end the rule guarantees."""
        return enough_samples(self.n, self.p, self.confidence) and self.high is not None


def quantile_interval(
    samples: npt.ArrayLike, p: float, confidence: float = CONFIDENCE, *, presorted: bool = False
) -> QuantileInterval:
    """The p-th percentile (nearest rank) of `samples` with its order-statistic confidence interval
    (`quantile_ranks`). Only the three order statistics it needs are selected (a partial sort), so a
    running load process can afford it on a large sample; `presorted` skips even that."""
    values = np.asarray(samples, dtype=np.float64).ravel()
    n = int(values.size)
    needed = min_samples(p, confidence)
    if n == 0:
        return QuantileInterval(p, 0, None, None, None, None, None, confidence, None, needed)
    ranks = quantile_ranks(n, p, confidence)
    wanted = [r - 1 for r in (ranks.low_rank, ranks.point_rank, ranks.high_rank) if r is not None]
    if not presorted:
        values = np.partition(values, sorted(set(wanted)))

    def at(rank: int | None) -> float | None:
        return float(values[rank - 1]) if rank is not None else None

    return QuantileInterval(
        p=p,
        n=n,
        value=at(ranks.point_rank),
        low=at(ranks.low_rank),
        high=at(ranks.high_rank),
        low_rank=ranks.low_rank,
        high_rank=ranks.high_rank,
        confidence=confidence,
        achieved=ranks.achieved,
        needed=needed,
    )
