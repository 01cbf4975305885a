"""The A/A check: two arms of one configuration, measured in the same rounds; how far they differ is the
smallest difference this machine can tell apart now.

A matrix with `aa:` runs each named line twice per round, as arms `a` and `b` (inferload/rounds.py).
Both arms at one load level and repetition ran back to back in one round, so each such pair is an
A/A comparison of exactly the kind a real comparison of two lines makes. For each metric the pairs'
log ratios d = ln(b / a) are, by construction, noise around 0 (the arms are the same), with spread s.
A new single pair (one cell of line X against one cell of line Y, as a round compares them) then
differs by more than exp(t(0.975, n-1) x s x sqrt(1 + 1/n)) - 1 only 5 % of the time when the lines are
the same: that ratio is the minimum detectable difference (MDD) here, a 95 % prediction bound
from the n A/A pairs. Below it two lines are "indistinguishable here".

This is the smallest version of the rule, for the `inferload aa` command; the paired comparisons of
the report build on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as scipy_stats

from analysis.stats import RunSummary

__all__ = ["METRICS", "AaPair", "Mdd", "aa_pairs", "minimum_detectable_difference", "mdd_table"]

MIN_PAIRS = 2


def _p50(run: RunSummary) -> float | None:
    """The run's p50, only with the requests the sample rule asks for (analysis/percentiles.py)."""
    return run.measured.latency_ms.reportable(50.0)


def _p99(run: RunSummary) -> float | None:
    return run.measured.latency_ms.reportable(99.0)


def _throughput(run: RunSummary) -> float | None:
    return run.measured.throughput_rps or None


METRICS: dict[str, Callable[[RunSummary], float | None]] = {
    "p50 latency": _p50,
    "p99 latency": _p99,
    "throughput": _throughput,
}


@dataclass(frozen=True)
class AaPair:
    """One A/A pair: both arms of one line at one load level in one repetition."""

    line: str  # the line's label without its arm
    level: str  # "40 req/s" or "concurrency 4"
    repetition: int
    a: RunSummary
    b: RunSummary


@dataclass(frozen=True)
class Mdd:
    """The minimum detectable difference of one metric, as a ratio (0.12: ±12 %), from `pairs` pairs."""

    metric: str
    pairs: int
    log_sd: float | None  # the spread s of ln(b / a) over the pairs
    mdd: float | None  # exp(t x s x sqrt(1 + 1/n)) - 1; None with fewer than MIN_PAIRS pairs
    largest: float | None  # the largest |b / a - 1| seen among the pairs

    def describe(self) -> str:
        if self.mdd is None:
            return f"{self.metric}: {self.pairs} pair(s), too few for a figure (needs {MIN_PAIRS})"
        return (f"{self.metric}: differences below ±{self.mdd:.0%} are indistinguishable here "
                f"({self.pairs} A/A pairs; the largest seen {self.largest:.0%})")


def _level(run: RunSummary) -> str:
    key = run.key
    return f"{key.rate:g} req/s" if key.rate is not None else f"concurrency {key.concurrency}"


def _line(run: RunSummary) -> str:
    """The line's label without its arm."""
    return replace(run.key.group, arm="").label()


def aa_pairs(runs: Sequence[RunSummary]) -> list[AaPair]:
    """Pairs of usable runs of arms a and b of one line at one level and repetition."""
    arms: dict[tuple[str, str, int], dict[str, RunSummary]] = {}
    for run in runs:
        if run.arm in ("a", "b") and run.usable:
            arms.setdefault((_line(run), _level(run), run.repetition), {})[run.arm] = run
    return [AaPair(line, level, repetition, both["a"], both["b"])
            for (line, level, repetition), both in sorted(arms.items()) if len(both) == 2]


def minimum_detectable_difference(metric: str, values: Sequence[tuple[float, float]]) -> Mdd:
    """The MDD of one metric from its (arm a, arm b) values (see the module docstring)."""
    ratios = np.array([math.log(b / a) for a, b in values if a > 0 and b > 0], dtype=np.float64)
    n = int(ratios.size)
    largest = float(np.max(np.abs(np.expm1(ratios)))) if n else None
    if n < MIN_PAIRS:
        return Mdd(metric, n, None, None, largest)
    s = float(np.std(ratios, ddof=1))
    t = float(scipy_stats.t.ppf(0.975, n - 1))
    return Mdd(metric, n, s, math.expm1(t * s * math.sqrt(1 + 1 / n)), largest)


def mdd_table(runs: Sequence[RunSummary]) -> list[Mdd]:
    """The MDD of every metric over all A/A pairs of these runs."""
    pairs = aa_pairs(runs)
    table = []
    for metric, pick in METRICS.items():
        values = [(a, b) for pair in pairs
                  if (a := pick(pair.a)) is not None and (b := pick(pair.b)) is not None]
        table.append(minimum_detectable_difference(metric, values))
    return table
