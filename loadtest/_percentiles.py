"""The one percentile method of inferload: nearest rank, from raw samples.

The p-th percentile is the smallest sample x such that at least p % of the samples are <= x, i.e.
the sorted sample at 1-based rank ceil(p/100 * n) (what numpy calls `method="inverted_cdf"`; the
product is rounded to 9 decimals first, so floating-point noise cannot push 99.9 % of 1000 to rank
1000). It is always an observed value, never an interpolation, so a reported p99 is a latency some
request really had. Example: samples 1..1000 ms give p50 = 500, p90 = 900, p99 = 990, p99.9 = 999.

Two intervals, one shape (`QuantileInterval`: ranks into the sorted sample, its ends, the sample rule):
- `quantile_interval`, the exact order-statistic interval, assumes independent samples. It is right
  for the generator's own lateness and for anything sampled independently.
- `window_quantile_interval` is the one for a window of request latencies, which are NOT independent:
  in a queue a slow moment delays every request behind it (a busy period), so exceedances of a high
  percentile come in clusters and the exact interval is far too narrow (over 40 s windows of a
  simulated M/M/1 queue at 50 and 80 % utilisation it covered the true p99 in 54 % and 16 % of them,
  for a promised 95 %). It computes the same exact interval on the sample's *effective* size, n / f,
  f the window's variance inflation estimated by batch means over time slices (`correlation`), and
  applies the sample rule to that effective count; f is taken at its 90 % upper confidence bound,
  since the windows that pass the rule are the ones whose estimate came out low. Its assumption: slices
  of a tenth of the window are long compared with the busy periods, so their means are nearly
  independent; the rule that at least `min_samples` effective samples are needed keeps that true (a
  slice then holds many times the correlation length). Its coverage is measured by
  benchmarks/interval_coverage.py on M/M/1 and M/D/1 queues at utilisations 0.5, 0.8 and 0.9 (results
  in benchmarks/results/interval_coverage.json, summarized in analysis/README.md); demo-length windows
  are "too few", not wrong.

It lives here, in the load generator, because the generator judges its own lateness p99 (load.json)
and, with early stopping, the precision of a cell's SLO percentile while it runs, and must not import
analysis/; analysis.percentiles imports all of it from here, so there is one method and one interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

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


def enough_samples(n: float, p: float, confidence: float = CONFIDENCE) -> bool:
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


@lru_cache(maxsize=4096)  # a pure function of its arguments; scipy's binomial takes ~1 ms
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


SLICES = (10,)  # the window is cut into 10 equal time slices (batch means)
BOUND = 0.90  # the inflation used is this upper confidence bound on f, never the estimate itself


@strict_fields
@dataclass(frozen=True)
class Correlation:
    """How much the dependence between a window's requests inflates the variance of its statistics.

    `inflation` (>= 1) is f = n Var(mean of n) / Var(one sample), estimated by batch means: the window
    cut into `slices` equal time slices, Var(mean) from the spread of the slices' means (a ratio
    estimator: slices hold unequal counts). f = 1 for independent samples; in a queue it grows with
    utilisation (M/M/1, simulated: about 9 at 50 %, 80 at 80 %, 330 at 90 %). The n samples are then
    worth n / f independent ones.
    """

    inflation: float  # what the interval uses: f's upper confidence bound (`BOUND`), at least 1
    slices: int
    estimate: float = 1.0  # f as the slices measured it

    def describe(self) -> str:
        return f"variance x{self.inflation:.1f} from correlation ({self.slices} time slices)"


def correlation(
    values: npt.ArrayLike, times: npt.ArrayLike, window: tuple[float, float], slices: Sequence[int] = SLICES
) -> Correlation:
    """The variance inflation of `values` observed at `times` within `window` (see `Correlation`).

    Each slicing in `slices` (k equal time slices) gives an estimate f from the spread of the slices'
    means; with k - 1 degrees of freedom it is itself very uncertain: f_hat ~ f chi2(k-1) / (k-1). The
    inflation used is f's upper `BOUND` confidence bound, f_hat (k - 1) / chi2.ppf(1 - BOUND, k - 1)
    (x2.16 for 10 slices), floored at 1; with several slicings the largest bound counts. Why a bound
    and not the estimate: the windows that get both ends of a p99 are exactly those whose f_hat came
    out low. With the estimate (and f = 1 unless the spread was evidence of correlation, the rule
    before), the two-sided intervals of simulated queues' windows held the true p99 in 46 % of the 91
    demo-length windows (of 7,200) that got one and in 86 % at 40 s; with the 90 % bound, 8 demo-length
    windows get both ends (6 hold it), 91 % hold it at 40 s and 98 % at 60 s and 300 s
    (benchmarks/results/interval_coverage.json). The price: independent latencies count as worth
    n / 2.16 too, so a p99 needs about 800 of them instead of 368.
    Non-finite values (a request still in flight, counted as slower than all) take the largest finite
    value. The latencies themselves are batched, not the indicator of the percentile: in simulated
    queues both inflate alike, and the latencies' mean is far steadier in a short window than the rare
    exceedances of a p99.
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    at = np.asarray(times, dtype=np.float64).ravel()
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, data[finite].max() if finite.any() else 0.0)
    n = int(data.size)
    start, end = window
    variance = float(data.var()) if n else 0.0
    if n < 2 or variance == 0.0 or end <= start:
        return Correlation(1.0, max(slices))  # no spread: nothing for correlation to inflate
    used, chosen, estimated = 0.0, max(slices), 1.0
    for k in slices:
        index = np.clip(((at - start) / (end - start) * k).astype(np.int64), 0, k - 1)
        counts = np.bincount(index, minlength=k).astype(np.float64)
        sums = np.bincount(index, weights=data, minlength=k)
        variance_of_mean = k / (k - 1) * float(np.sum((sums - counts * data.mean()) ** 2)) / n**2
        estimate = variance_of_mean * n / variance
        bound = estimate * bound_factor(k)
        if bound > used:
            used, chosen, estimated = bound, k, estimate
    return Correlation(max(used, 1.0), chosen, estimated)


@cache
def bound_factor(slices: int = max(SLICES)) -> float:
    """How far `correlation` raises an estimate: (k - 1) / chi2.ppf(1 - BOUND, k - 1), 2.16 for 10 slices.

    It is also what independent requests typically get: f estimated near 1, so they count as worth
    n / 2.16."""
    from scipy import stats as scipy_stats

    return (slices - 1) / float(scipy_stats.chi2.ppf(1.0 - BOUND, slices - 1))


def requests_needed(p: float, inflation: float) -> int | None:
    """The requests a window needs for its p-th percentile to be judged (`window_quantile_interval`'s
    sample rule) when their variance inflation, the bound included, is `inflation`: min_samples(p) x
    inflation, at least min_samples(p) x `bound_factor()` (the typical independent case). p99: 795 for
    independent requests, 3,680 at inflation 10; p90: 78 and 360. None for p = 0 or 100."""
    needed = min_samples(p)
    if needed is None:
        return None
    return math.ceil(needed * max(inflation, bound_factor()))


def effective_ranks(n: int, inflation: float, p: float, confidence: float = CONFIDENCE
                    ) -> tuple[int | None, int | None]:
    """The ranks (1-based, among n sorted samples) of the ends of the p-th percentile's interval when the
    n samples are worth m = n / `inflation` independent ones.

    The exact construction (`quantile_ranks`) on m samples: B ~ Binomial(m, q) counts the effective
    samples below the true quantile, P(B <= k) = I_{1-q}(m - k, k + 1) (the regularized incomplete beta,
    defined for a real m); the lower end has k_low = the largest k with P(B <= k) <= alpha / 2 effective
    samples below it, the upper end k_high = the smallest k with P(B <= k) >= 1 - alpha / 2. Each
    effective sample stands for `inflation` real ones: ranks floor(f k_low) + 1 and ceil(f k_high) + 1.
    With f = 1 these are exactly the exact interval's ranks. None: no such rank within the sample.
    """
    from scipy import special

    q = p / 100.0
    if not 0.0 < q < 1.0 or n == 0:
        return None, None
    m = n / inflation
    tail = (1.0 - confidence) / 2.0

    def cdf(k: int) -> float:
        return 1.0 if k >= m else float(special.betainc(m - k, k + 1, 1.0 - q))

    def first(at_least: float) -> int:
        """The smallest k >= 0 with cdf(k) >= at_least (cdf rises to 1 at k = ceil(m))."""
        low, high = 0, math.ceil(m)
        while low < high:
            middle = (low + high) // 2
            if cdf(middle) >= at_least:
                high = middle
            else:
                low = middle + 1
        return low

    k_low = first(math.nextafter(tail, math.inf)) - 1  # the largest k with cdf(k) <= tail
    k_high = first(1.0 - tail)
    low_rank = math.floor(inflation * k_low) + 1 if k_low >= 0 else None
    high_rank = math.ceil(inflation * k_high) + 1
    return low_rank, high_rank if high_rank <= n else None


@strict_fields
@dataclass(frozen=True)
class QuantileInterval:
    """A nearest-rank percentile of one run with its exact, distribution-free confidence interval.

    `low`/`high` are the observed samples at 1-based ranks `low_rank`/`high_rank`; the true quantile
    lies in [low, high] with probability `achieved` >= the nominal confidence, for any continuous
    latency distribution (from Binomial(n, q): the count of samples below the true quantile).
    `enough` is False when n < `min_samples`: then `high` is None (no order statistic is high enough)
    and the percentile is not reported; `low` may still exist and can prove a miss.
    With `correlation` (`window_quantile_interval`) the samples were dependent: the interval is widened
    by their variance inflation, `achieved` is None (the level is nominal, checked by simulation), and
    the sample rule counts `effective_n`, n divided by the inflation.
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
    correlation: Correlation | None = None  # None: the samples were taken as independent

    @property
    def effective_n(self) -> float:
        """The independent samples this sample is worth (n itself when taken as independent)."""
        return self.n / self.correlation.inflation if self.correlation is not None else float(self.n)

    @property
    def enough(self) -> bool:
        """The sample rule (`enough_samples`) on the effective sample, with the upper end it guarantees."""
        return enough_samples(self.effective_n, self.p, self.confidence) and self.high is not None

    @property
    def method(self) -> str:
        if self.correlation is None:
            return "exact binomial order-statistic interval (independent samples)"
        return (f"order-statistic interval on the effective sample, correlation from batch means over "
                f"{self.correlation.slices} time slices")


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


def window_quantile_interval(
    samples: npt.ArrayLike,
    times: npt.ArrayLike,
    window: tuple[float, float],
    p: float,
    confidence: float = CONFIDENCE,
) -> QuantileInterval:
    """The p-th percentile (nearest rank) of one window's latencies `samples`, observed at `times` (their
    scheduled instants, any unit, `window` in the same), with a 95 % interval valid for dependent samples.

    The exact interval on the sample's *effective* size (`effective_ranks`): n / f independent samples,
    f the variance inflation estimated over time slices of the window (`correlation`). The sample rule
    counts the same effective samples: with fewer than `min_samples` the upper end is withheld (`high`
    None: "too few"), since a short window may simply not have met a long busy period yet; the lower end,
    when it exists, still bounds the percentile from below (a miss it proves is real). With f = 1 it is
    the exact interval. Its assumption, the slices being long compared with the busy periods, is what
    the sample rule protects: n / f >= 368 (p99) makes each of 10 slices hold over 36 f samples.
    """
    values = np.asarray(samples, dtype=np.float64).ravel()
    n = int(values.size)
    needed = min_samples(p, confidence)
    if n == 0:
        return QuantileInterval(p, 0, None, None, None, None, None, confidence, None, needed)
    dependence = correlation(values, times, window)
    point_rank = nearest_rank_index(p, n)
    low_rank, high_rank = effective_ranks(n, dependence.inflation, p, confidence)
    if not enough_samples(n / dependence.inflation, p, confidence):
        high_rank = None
    if low_rank is not None:
        low_rank = min(low_rank, point_rank)
    if high_rank is not None:
        high_rank = max(high_rank, point_rank)
    wanted = sorted({r - 1 for r in (low_rank, point_rank, high_rank) if r is not None})
    values = np.partition(values, wanted)

    def at(rank: int | None) -> float | None:
        return float(values[rank - 1]) if rank is not None else None

    return QuantileInterval(
        p=p,
        n=n,
        value=at(point_rank),
        low=at(low_rank),
        high=at(high_rank),
        low_rank=low_rank,
        high_rank=high_rank,
        confidence=confidence,
        achieved=None,
        needed=needed,
        correlation=dependence,
    )
