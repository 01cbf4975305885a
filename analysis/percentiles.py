"""Exact percentiles from raw samples (never from buckets: a p99 verdict must come from lossless data).

Method: nearest rank (what numpy calls `method="inverted_cdf"`): the p-th percentile is the
smallest sample x such that at least p % of the samples are <= x, i.e. the sorted sample at
1-based rank ceil(p/100 * n) (computed here with the product rounded to 9 decimals first, so
floating-point noise cannot push 99.9 % of 1000 to rank 1000). It is always an observed value,
never an interpolation, so a reported p99 is a latency some request really had.
Example: samples 1..1000 ms give p50 = 500, p90 = 900, p99 = 990, p99.9 = 999, max = 1000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

REPORTED_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def _nearest_rank(sorted_values: np.ndarray, p: float) -> float:
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    # rounding first keeps 99.9 % of 1000 at rank 999 (binary floating point makes it 999.0000000000001)
    rank = max(1, math.ceil(round(p * sorted_values.size / 100.0, 9)))
    return float(sorted_values[rank - 1])


def percentile(samples: npt.ArrayLike, p: float) -> float | None:
    """The nearest-rank p-th percentile of `samples`, or None when there are none."""
    values = np.sort(np.asarray(samples, dtype=np.float64), axis=None)
    if values.size == 0:
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile must be within 0..100, got {p}")
        return None
    return _nearest_rank(values, p)


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
