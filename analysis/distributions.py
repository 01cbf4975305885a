"""Did a cell's whole latency distribution move? A rank test on time slices, corrected across cells.

A p99 interval says little at a few hundred requests (the smoke matrix's ~450 a cell): a 30 % slowdown
of every request hides inside it. The whole distribution says much more, but its requests are not
independent (queues: busy periods), so a rank test over the requests themselves would call an A/A pair
different. The unit here is the time slice: each run's window is cut into `SLICES` equal slices, and
each slice gives one number, the mean of its ok requests' log latencies (every request counts: a
uniform slowdown of x moves it by ln x; a tail that grows moves it too). Slices long compared with the
busy periods are nearly independent: the same assumption as the percentile interval
(`loadtest._percentiles.correlation`), with the same slicing.

- Test: Mann-Whitney's U over the two runs' slice values (exact, two-sided; with tied values the normal
  approximation with its tie correction): distribution-free, and it cannot be fooled by one wild slice.
  With 10 slices a side its smallest exact p is 1.1e-5.
- Size: the Hodges-Lehmann shift (median of all after - before slice differences), as a ratio of
  latencies, exp(shift), with its exact 95 % interval from U's null distribution.
- Many cells: Holm's step-down correction keeps the chance of any false "worse" at 5 % across every
  cell of the comparison (`holm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from analysis.percentiles import CONFIDENCE

SLICES = 10
MIN_SLICES = 5  # fewer non-empty slices on either side: no test


def slice_log_means(
    latency_ms: npt.ArrayLike, scheduled: npt.ArrayLike, window: tuple[float, float], slices: int = SLICES
) -> tuple[float, ...]:
    """Per time slice of `window` (in `scheduled`'s unit), the mean log latency (ms) of its requests;
    slices without a request are left out."""
    values = np.log(np.maximum(np.asarray(latency_ms, dtype=np.float64).ravel(), 1e-9))
    at = np.asarray(scheduled, dtype=np.float64).ravel()
    start, end = window
    if values.size == 0 or end <= start:
        return ()
    index = np.clip(((at - start) / (end - start) * slices).astype(np.int64), 0, slices - 1)
    counts = np.bincount(index, minlength=slices)
    sums = np.bincount(index, weights=values, minlength=slices)
    return tuple(float(s / c) for s, c in zip(sums, counts, strict=True) if c > 0)


@cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings give each U = 0..m*n (no ties)."""
    if m == 0 or n == 0:
        return (1,)
    with_last_x = _u_counts(m - 1, n)  # the largest value is an x: it beats all n ys
    with_last_y = _u_counts(m, n - 1)
    counts = [0] * (m * n + 1)
    for u, c in enumerate(with_last_x):
        counts[u + n] += c
    for u, c in enumerate(with_last_y):
        counts[u] += c
    return tuple(counts)


def _critical_rank(m: int, n: int, confidence: float = CONFIDENCE) -> int | None:
    """The largest k with P(U <= k - 1) <= (1 - confidence) / 2 (None: no such k >= 1)."""
    counts = _u_counts(m, n)
    total = sum(counts)
    tail = (1.0 - confidence) / 2.0
    cumulative, k = 0, 0
    for u, c in enumerate(counts):
        cumulative += c
        if cumulative / total > tail:
            break
        k = u + 1
    return k if k >= 1 else None


@dataclass(frozen=True)
class Shift:
    """How the `after` distribution sits against `before`: a latency ratio with its interval, and the
    test's p-value (before any correction)."""

    ratio: float  # exp(Hodges-Lehmann shift of the slice means of log latency): 1.3 = 30 % slower
    low: float | None
    high: float | None
    p_value: float
    slices: tuple[int, int]  # (before, after)

    def describe(self) -> str:
        interval = ("" if self.low is None or self.high is None
                    else f" [{self.low:.2f}, {self.high:.2f}]")
        return (f"latency x{self.ratio:.2f}{interval} (rank test over {self.slices[0]} + {self.slices[1]} "
                f"time slices, p = {self.p_value:.2g})")


def shift(before: Sequence[float], after: Sequence[float]) -> Shift | None:
    """The shift of `after`'s slice values against `before`'s; None with fewer than `MIN_SLICES` a side."""
    x, y = np.asarray(after, dtype=np.float64), np.asarray(before, dtype=np.float64)
    if x.size < MIN_SLICES or y.size < MIN_SLICES:
        return None
    tied = np.unique(np.concatenate([x, y])).size < x.size + y.size
    # the exact null distribution holds without ties; with ties, the normal one with its tie correction
    method = "asymptotic" if tied else "exact"
    p_value = float(scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method=method).pvalue)
    differences = np.sort(np.subtract.outer(x, y).ravel())
    estimate = float(np.median(differences))
    k = _critical_rank(int(x.size), int(y.size))
    low = high = None
    if k is not None:
        low, high = math.exp(float(differences[k - 1])), math.exp(float(differences[-k]))
    return Shift(math.exp(estimate), low, high, p_value, (int(y.size), int(x.size)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): reject where adjusted < 0.05 and the
    chance of any false rejection over the family is at most 5 %."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
