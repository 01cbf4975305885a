"""Intervals on the numbers verdicts rest on, and the one record (`Estimate`) every view shows them with.

Methods (all two-sided at `percentiles.CONFIDENCE`, 95 %):
- A percentile of one run: the exact order-statistic (binomial) interval on the window's effective
  sample size, its correlation measured over time slices (`percentiles.window_quantile_interval`).
- A quantity over >= 2 repetitions: Student-t interval of the mean of the per-repetition values.
- Throughput of one run: batch means, the window cut into `THROUGHPUT_SLICES` equal slices, Student-t
  over the slices' completions/s (consecutive slices are treated as independent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from analysis.percentiles import CONFIDENCE
from inferload_formats import strict_fields

THROUGHPUT_SLICES = 10
ORDER_STATISTIC = ("order-statistic interval on the effective sample (one run; correlation from batch means "
                   "over time slices)")


def t_method(n: int) -> str:
    return f"Student-t over {n} repetitions"


@strict_fields
@dataclass(frozen=True)
class Estimate:
    """A point value with its interval, how it was computed, and why it is missing when it is."""

    value: float | None
    low: float | None = None
    high: float | None = None
    method: str | None = None
    note: str | None = None

    def separates_above(self, other: Estimate) -> bool:
        """True when this interval lies wholly above `other`'s (both bounds known)."""
        return self.low is not None and other.high is not None and self.low > other.high


MISSING = Estimate(None)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Student-t interval of the mean; None with fewer than 2 values.

    Every quantity it is used for (latencies, rates) is non-negative, so the lower end is clamped at 0:
    with 3 widely spread repetitions, t's symmetric interval would otherwise print a negative p99.
    """
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size < 2:
        return None
    mean = float(data.mean())
    t = scipy_stats.t.ppf(0.5 + confidence / 2, data.size - 1)
    half = float(t * data.std(ddof=1) / math.sqrt(data.size))
    return max(mean - half, 0.0), mean + half


def slice_rate_interval(
    done_ns: np.ndarray, window: tuple[int, int], slices: int = THROUGHPUT_SLICES
) -> tuple[float, float] | None:
    """Batch-means interval of a completion rate (events/s) from the completion times inside `window`."""
    start, end = window
    if end <= start:
        return None
    edges = np.linspace(start, end, slices + 1)
    counts, _ = np.histogram(np.asarray(done_ns, dtype=np.float64), bins=edges)
    slice_s = (end - start) / 1e9 / slices
    return t_interval(list(counts / slice_s))
