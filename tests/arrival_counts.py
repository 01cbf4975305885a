"""Did a stream keep all its records? Count its arrivals against its Poisson rate."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def missing_arrivals(scheduled_ns: Iterable[int], rate: float) -> str | None:
    """None when the arrivals between a stream's first and last record number what a Poisson stream at
    `rate` gives over that span (within 4 standard deviations); else what is wrong. A stream whose
    records were lost in between, or that kept fewer than two, does not pass."""
    times = np.sort(np.fromiter(scheduled_ns, dtype=np.int64))
    if len(times) < 2:
        return f"only {len(times)} record(s) kept"
    span_s = (int(times[-1]) - int(times[0])) / 1e9
    expected = rate * span_s
    after_first = len(times) - 1
    if abs(after_first - expected) > 4 * math.sqrt(max(expected, 1.0)):
        return (f"{after_first} arrivals in the {span_s:.2f} s after the first; a Poisson stream at "
                f"{rate:g}/s gives {expected:.1f} ± {math.sqrt(max(expected, 1.0)):.1f}")
    return None
