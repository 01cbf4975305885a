"""The A/A check: two arms of one configuration, measured in the same rounds; how far they differ is the
smallest difference this machine can tell apart now.

A matrix with `aa:` runs each named line twice per round, as arms `a` and `b` (inferload/rounds.py).
Both arms at one load level and repetition ran back to back in one round, so each such pair is an
A/A comparison of exactly the kind a real comparison of two lines makes. For each metric the pairs'
log ratios d = ln(b / a) are, by construction, noise around 0 (the arms are the same), with spread s.
A new single pair (one cell of line X against one cell of line Y, as a round compares them) then
differs by more than exp(|mean d| + t(0.975, n-1) x s x sqrt(1 + 1/n)) - 1 only 5 % of the time when
the lines are the same: that ratio is the minimum detectable difference (MDD) here, a 95 % prediction
bound from the n A/A pairs. |mean d| counts any systematic gap between the arms (one always measured
after the other in a round, warmer caches): a gap the arms show is one two different lines could show
too. Below it two lines are "indistinguishable here".

The pairs are those a comparison would judge (`judged_pairs`): a pair with a run the machine watch flagged
(analysis/drift.py) is left out, as the paired verdicts and the gate leave such runs out, and so is a level
past the SLO in both arms: an overloaded queue's latency grows with the run (the gate does not compare
those cells), so its arms differ by whatever the queue reached, not by the machine's noise. On the
protocols matrix's A/A (3 repetitions, every line twinned) the p50 figure over all 134 pairs was ±174 %,
over the 25 unflagged pairs below overload ±35 %.

Metrics: p50 and p99 latency at a load level, and the latency at the SLO's percentile when that is
neither (each only where its window had the effective requests the sample rule asks for,
analysis/percentiles.py), throughput, and the max rate under the SLO
(`max_rate_mdd`: each arm's sweep walked per repetition, one pair per repetition).
A metric whose arms agree exactly in every pair gives no figure, not ±0 %: in an open loop both arms
send the same seeded schedule, so at a rate the server keeps up with their throughputs are equal by
construction, and ±0 % would claim that any difference can be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as scipy_stats

from analysis.drift import machine_flags
from analysis.repetitions import CellSummary
from analysis.stats import RunSummary

__all__ = ["METRICS", "SLO_LATENCY", "AaPair", "Mdd", "aa_pairs", "judged_pairs", "max_rate_mdd",
           "mdd_sentence", "mdd_table", "minimum_detectable_difference", "slo_metric"]

# A figure needs 3 pairs: from 2, its t factor is 12.7 and the bound says nothing (two demo pairs 17 %
# apart gave ±3,073 %); from 3, t = 4.3.
MIN_PAIRS = 3
SLO_LATENCY = "SLO percentile latency"  # the metric of the SLO's own percentile (p90 in the demo)
_OWN_ROWS = {50.0: "p50 latency", 99.0: "p99 latency"}


def slo_metric(percentile: float) -> str:
    """The metric that judges the SLO's percentile: its own row when it has one, else `SLO_LATENCY`."""
    return _OWN_ROWS.get(percentile, SLO_LATENCY)


def _p50(run: RunSummary) -> float | None:
    """The run's p50, only with the requests the sample rule asks for (analysis/percentiles.py)."""
    return run.measured.latency_ms.reportable(50.0)


def _p99(run: RunSummary) -> float | None:
    """The run's p99, only when its window had the effective requests p99 needs (correlation counted)."""
    interval = run.measured.p99_interval
    return interval.value if interval.enough else None


def _slo_latency(run: RunSummary) -> float | None:
    """The run's latency at the SLO's percentile, only when its window had the effective requests that
    percentile needs (correlation counted): what the max-rate verdicts judge."""
    interval = run.measured.slo.interval
    return interval.value if interval.enough else None


def _throughput(run: RunSummary) -> float | None:
    return run.measured.throughput_rps or None


METRICS: dict[str, Callable[[RunSummary], float | None]] = {
    "p50 latency": _p50,
    "p99 latency": _p99,
    SLO_LATENCY: _slo_latency,
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
    mdd: float | None  # exp(|mean| + t x s x sqrt(1 + 1/n)) - 1; None with fewer than MIN_PAIRS pairs
    largest: float | None  # the largest |b / a - 1| seen among the pairs

    @property
    def identical(self) -> bool:
        """The arms agreed exactly in every pair: no spread to measure (see the module docstring)."""
        return self.pairs >= MIN_PAIRS and self.largest == 0.0

    def describe(self) -> str:
        if self.identical:
            return (f"{self.metric}: the arms were identical in all {self.pairs} pairs (the same seeded "
                    "schedule): no figure")
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


def judged_pairs(runs: Sequence[RunSummary], cells: Sequence[CellSummary] = ()) -> list[AaPair]:
    """The A/A pairs a comparison would judge (module docstring): neither run flagged by the machine
    watch, and (given the cells) not a level where both arms missed the SLO."""
    flagged = machine_flags(runs)
    overloaded = {run.cell_id for cell in cells if cell.slo_status == "missed" for run in cell.runs}
    return [pair for pair in aa_pairs(runs)
            if pair.a.cell_id not in flagged and pair.b.cell_id not in flagged
            and not (pair.a.cell_id in overloaded and pair.b.cell_id in overloaded)]


def minimum_detectable_difference(metric: str, values: Sequence[tuple[float, float]]) -> Mdd:
    """The MDD of one metric from its (arm a, arm b) values (see the module docstring)."""
    ratios = np.array([math.log(b / a) for a, b in values if a > 0 and b > 0], dtype=np.float64)
    n = int(ratios.size)
    largest = float(np.max(np.abs(np.expm1(ratios)))) if n else None
    if n < MIN_PAIRS or largest == 0.0:
        return Mdd(metric, n, None, None, largest)
    s = float(np.std(ratios, ddof=1))
    t = float(scipy_stats.t.ppf(0.975, n - 1))
    gap = abs(float(ratios.mean()))
    return Mdd(metric, n, s, math.expm1(gap + t * s * math.sqrt(1 + 1 / n)), largest)


def max_rate_mdd(cells: Sequence[CellSummary]) -> Mdd:
    """The MDD of the max rate under the SLO: each A/A arm's open-loop sweep walked per repetition
    (analysis/verdicts.py), one (arm a, arm b) pair per line and repetition where both found a max."""
    from analysis.verdicts import repetition_max_rates

    lines: dict[tuple[str, str], dict[str, dict[int, float | None]]] = {}
    for group in sorted({c.key.group for c in cells if c.key.mode == "open" and c.key.rate is not None}):
        arm = "b" if group.arm == "b" else "a"
        members = [c for c in cells if c.key.group == group and c.usable]
        if not any(r.arm in ("a", "b") for c in members for r in c.runs):
            continue
        lines.setdefault((group.server, replace(group, arm="").label()), {})[arm] = (
            repetition_max_rates(members))
    values = []
    for arms in lines.values():
        if len(arms) == 2:
            for repetition, a in arms["a"].items():
                b = arms["b"].get(repetition)
                if a is not None and b is not None:
                    values.append((a, b))
    return minimum_detectable_difference("max rate under the SLO", values)


def mdd_table(runs: Sequence[RunSummary], cells: Sequence[CellSummary] = ()) -> list[Mdd]:
    """The MDD of every metric over the A/A pairs of these runs a comparison would judge (`judged_pairs`;
    and, given their cells, of the max rate under the SLO)."""
    pairs = judged_pairs(runs, cells)
    table = []
    percentiles = {run.measured.slo.interval.p for pair in pairs for run in (pair.a, pair.b)}
    for metric, pick in METRICS.items():
        if metric == SLO_LATENCY and all(slo_metric(p) != SLO_LATENCY for p in percentiles):
            continue  # the same figure as its own row ("p50 latency" / "p99 latency")
        values = [(a, b) for pair in pairs
                  if (a := pick(pair.a)) is not None and (b := pick(pair.b)) is not None]
        table.append(minimum_detectable_difference(metric, values))
    if cells:
        table.append(max_rate_mdd(cells))
    return table


def mdd_sentence(table: Sequence[Mdd]) -> str:
    """The headline's and the report's sentence on what this machine can tell apart now."""
    figures = [m for m in table if m.mdd is not None]
    if not figures:
        if not [m for m in table if m.pairs]:
            return ("A/A: no line was measured twice (the matrix's `aa:`), so the smallest difference this "
                    "machine can tell apart is unknown: every ratio below is judged on its own interval only")
        seen = [m for m in table if m.pairs and not m.identical]
        if not seen:
            return "A/A: the arms were identical in every pair (the same seeded schedule): no figure"
        return ("A/A: too few pairs for a figure (" + "; ".join(
            f"{m.metric}: {m.pairs}" + ("" if m.largest is None else f", arms {m.largest:.0%} apart")
            for m in seen) + f"; {MIN_PAIRS} needed)")
    return ("A/A (one configuration measured twice per round): differences below "
            + ", ".join(f"±{m.mdd:.0%} ({m.metric})" for m in figures) + " are indistinguishable here")
