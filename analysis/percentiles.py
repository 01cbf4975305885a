"""Exact percentiles from raw samples (never from buckets: a p99 verdict must come from lossless data).

Method: nearest rank, defined once in `loadtest._percentiles` (the generator's own lateness p99 uses
it too): the p-th percentile is the sorted sample at 1-based rank ceil(p/100 * n), always an observed
value, never an interpolation. Its exact order-statistic interval and the sample rule (`min_samples`)
are defined there too (the load generator's early stopping judges a running cell with them).
Example: samples 1..1000 ms give p50 = 500, p90 = 900, p99 = 990,
p99.9 = 999, max = 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inferload_formats import strict_fields
from loadtest._percentiles import (
    CONFIDENCE,
    Correlation,
    QuantileInterval,
    correlation,
    enough_samples,
    min_samples,
    percentile,
    quantile_interval,
    requests_needed,
    window_quantile_interval,
)
from loadtest._percentiles import nearest_rank as _nearest_rank

__all__ = [
    "CONFIDENCE",
    "Correlation",
    "REPORTED_PERCENTILES",
    "Percentiles",
    "QuantileInterval",
    "enough_samples",
    "correlation",
    "min_samples",
    "reportable_percentile",
    "percentile",
    "quantile_interval",
    "requests_needed",
    "window_quantile_interval",
]

REPORTED_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@strict_fields
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

    def reportable(self, p: float) -> float | None:
        """The p-th percentile (one of REPORTED_PERCENTILES), or None with too few samples to report it."""
        if not enough_samples(self.count, p):
            return None
        return {50.0: self.p50, 90.0: self.p90, 99.0: self.p99, 99.9: self.p999}[p]


def reportable_percentile(samples: npt.ArrayLike, p: float) -> float | None:
    """The p-th percentile of `samples`, or None with too few of them to report it (the sample rule)."""
    values = np.asarray(samples, dtype=np.float64).ravel()
    return percentile(values, p) if enough_samples(int(values.size), p) else None
