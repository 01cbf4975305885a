"""The one percentile method of inferload: nearest rank, from raw samples.

The p-th percentile is the smallest sample x such that at least p % of the samples are <= x, i.e.
the sorted sample at 1-based rank ceil(p/100 * n) (what numpy calls `method="inverted_cdf"`; the
product is rounded to 9 decimals first, so floating-point noise cannot push 99.9 % of 1000 to rank
1000). It is always an observed value, never an interpolation, so a reported p99 is a latency some
request really had. Example: samples 1..1000 ms give p50 = 500, p90 = 900, p99 = 990, p99.9 = 999.

It lives here, in the load generator, because the generator judges its own lateness p99 (load.json)
and must not import analysis/; analysis.percentiles imports it from here, so both use one method.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


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
