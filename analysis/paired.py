"""Paired comparisons: "A beats B" judged only from rounds in which A and B ran back to back.

Two lines' cells at the same load level in the same round (inferload/rounds.py) ran minutes apart at
most, on the same machine state: they form a pair, and each pair gives a ratio r = metric(A) /
metric(B). Over the n pairs of two lines (every level and round both ran, repetitions included),
d = ln r has a mean and, with n >= 2, a Student-t interval. A is surely lower than B when the whole
interval lies below 0 and beyond the A/A minimum detectable difference (analysis/aa.py), when one is
known; with one pair there is no between-round interval, and a single pair is "surely" apart only
when it lies beyond that minimum detectable difference. Pairs with a cell the calibration flags
(analysis/drift.py) are left out. Anything else is "indistinguishable here".

The max rate under the SLO is paired by repetition (`compare_max_rates`): each repetition's sweep
walked on its own gives each line's maximum; repetitions run interleaved in rounds, so one repetition's
two maxima were measured side by side. Two brackets measured apart (no rounds) are no pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from analysis.aa import METRICS
from analysis.repetitions import CellSummary
from analysis.stats import RunSummary

__all__ = ["Pair", "PairedComparison", "compare_lines", "compare_max_rates", "line_label"]


def line_label(run: RunSummary) -> str:
    key = run.key
    share = "" if key.repeat_share is None else f" repeat {key.repeat_share:g}"
    batch = "" if key.batch == 1 else f" batch {key.batch}"
    return f"{key.server} {key.protocol}{batch}{share} [{key.server_config_name}]"


@dataclass(frozen=True)
class Pair:
    level: float
    round: int
    repetition: int
    a: float
    b: float


@dataclass(frozen=True)
class PairedComparison:
    """Line `a` against line `b` on one metric, from the pairs of their cells run in one round."""

    a: str
    b: str
    metric: str
    pairs: tuple[Pair, ...]
    excluded: int  # pairs left out because the calibration flagged one of their cells
    ratio: float | None  # geometric mean of a / b over the pairs
    low: float | None  # 95 % interval of that ratio (None with fewer than 2 pairs)
    high: float | None
    # "a lower" / "b lower" (surely: beyond the noise, over >= 2 repetitions), "a lower here" / "b lower
    # here" (beyond the noise of this run, one repetition) or "indistinguishable here"
    verdict: str
    why: str

    def describe(self) -> str:
        if self.ratio is None and self.verdict.endswith(" here") and self.verdict != "indistinguishable here":
            lower, higher = (self.a, self.b) if self.verdict.startswith("a lower") else (self.b, self.a)
            return f"{self.a} vs {self.b}: {self.metric} of {lower} lower here than {higher} ({self.why})"
        if self.ratio is None:
            return f"{self.a} vs {self.b}: no round measured both at one load ({self.why})"
        interval = (
            f" [{self.low:.2f}-{self.high:.2f}]" if self.low is not None and self.high is not None else ""
        )
        head = (
            f"{self.a} vs {self.b}: {self.metric} ratio {self.ratio:.2f}{interval} over {len(self.pairs)} "
            f"paired cell(s)"
        )
        if self.verdict == "indistinguishable here":
            return f"{head}: indistinguishable here ({self.why})"
        lower, higher = (self.a, self.b) if self.verdict.startswith("a lower") else (self.b, self.a)
        how = "lower here than" if self.verdict.endswith(" here") else "surely lower than"
        return f"{head}: {lower} {how} {higher} ({self.why})"


def _pairs(
    runs_a: Sequence[RunSummary],
    runs_b: Sequence[RunSummary],
    pick: Callable[[RunSummary], float | None],
    flagged: set[str],
) -> tuple[list[Pair], int]:
    by_round = {(run.round, run.repetition, run.key.rate, run.key.concurrency): run
                for run in runs_b if run.usable}
    pairs, excluded = [], 0
    for run in runs_a:
        other = by_round.get((run.round, run.repetition, run.key.rate, run.key.concurrency))
        if other is None or not run.usable or run.round is None:
            continue
        a, b = pick(run), pick(other)
        if a is None or b is None or a <= 0 or b <= 0:
            continue
        if run.cell_id in flagged or other.cell_id in flagged:
            excluded += 1
            continue
        pairs.append(Pair(float(run.key.rate or run.key.concurrency or 0), run.round, run.repetition, a, b))
    return pairs, excluded


def compare_lines(
    runs_a: Sequence[RunSummary],
    runs_b: Sequence[RunSummary],
    *,
    metric: str = "p99 latency",
    mdd: float | None = None,
    flagged: set[str] | frozenset[str] = frozenset(),
) -> PairedComparison:
    """Compare two lines' cells (each line's runs, arms kept apart by the caller) on `metric`."""
    if not runs_a or not runs_b:  # a line without cells (e.g. every one excluded): nothing to pair
        a = line_label(runs_a[0]) if runs_a else "?"
        b = line_label(runs_b[0]) if runs_b else "?"
        why = f"{'the first' if not runs_a else 'the second'} line has no cells to pair"
        return PairedComparison(a, b, metric, (), 0, None, None, None, "indistinguishable here", why)
    a, b = line_label(runs_a[0]), line_label(runs_b[0])
    pairs, excluded = _pairs(runs_a, runs_b, METRICS[metric], set(flagged))
    if not pairs:
        return PairedComparison(
            a,
            b,
            metric,
            (),
            excluded,
            None,
            None,
            None,
            "indistinguishable here",
            f"{excluded} pair(s) flagged by the calibration" if excluded else "no pairs",
        )
    return judge_pairs(a, b, metric, pairs, excluded, mdd)


def judge_pairs(a: str, b: str, metric: str, pairs: Sequence[Pair], excluded: int,
           mdd: float | None) -> PairedComparison:
    """The verdict over `pairs` (see the module docstring)."""
    logs = np.array([math.log(p.a / p.b) for p in pairs])
    mean = float(logs.mean())
    margin = math.log1p(mdd) if mdd is not None else 0.0
    aa = f"the A/A's ±{mdd:.0%}" if mdd is not None else "no A/A figure"
    low = high = None
    if len(pairs) >= 2:
        t = float(scipy_stats.t.ppf(0.975, len(pairs) - 1))
        half = t * float(logs.std(ddof=1)) / math.sqrt(len(pairs))
        low, high = mean - half, mean + half
        beyond = high < -margin or low > margin
        why = (f"95 % interval over {len(pairs)} pairs, beyond {aa}" if beyond else
               f"the 95 % interval over {len(pairs)} pairs reaches "
               + ("1" if low <= 0 <= high else f"within {aa}"))
    else:
        beyond = mdd is not None and abs(mean) > margin
        why = f"one pair: no interval, {'beyond' if beyond else 'within'} {aa}" if mdd is not None else (
            "one pair: no interval, and no A/A figure")
    repetitions = {p.repetition for p in pairs}
    verdict = "indistinguishable here"
    if beyond:
        verdict = "a lower" if mean < 0 else "b lower"
        if len(repetitions) < 2:
            verdict += " here"
            why += "; one repetition: no between-run interval, so not 'surely'"
    if excluded:
        why += f"; {excluded} pair(s) flagged by the calibration left out"
    return PairedComparison(a, b, metric, tuple(pairs), excluded, math.exp(mean),
                            math.exp(low) if low is not None else None,
                            math.exp(high) if high is not None else None, verdict, why)


def compare_max_rates(
    cells_a: Sequence[CellSummary],
    cells_b: Sequence[CellSummary],
    *,
    mdd: float | None = None,
    flagged: set[str] | frozenset[str] = frozenset(),
) -> PairedComparison:
    """Two sweep lines' max rates under the SLO, paired by repetition: each repetition's sweep walked on
    its own (analysis/verdicts.py), A's and B's maxima of one repetition a pair when both lines ran it in
    interleaved rounds (every run has a round). A repetition with a flagged cell on either line is left
    out. `ratio` is A / B: "b lower" means A sustains more. Two brackets measured apart are no pair."""
    from analysis.verdicts import repetition_max_rates

    metric = "max rate under the SLO"
    label_a = cells_a[0].key.group.label() if cells_a else "?"
    label_b = cells_b[0].key.group.label() if cells_b else "?"

    def interleaved(cells: Sequence[CellSummary], repetition: int) -> bool:
        runs = [r for c in cells for r in c.runs if r.repetition == repetition]
        return bool(runs) and all(r.round is not None for r in runs)

    def touched(cells: Sequence[CellSummary], repetition: int) -> bool:
        return any(r.cell_id in flagged for c in cells for r in c.runs if r.repetition == repetition)

    maxima_a, maxima_b = repetition_max_rates(cells_a), repetition_max_rates(cells_b)
    pairs, excluded, apart = [], 0, 0
    for repetition in sorted(set(maxima_a) & set(maxima_b)):
        a, b = maxima_a[repetition], maxima_b[repetition]
        if a is None or b is None:
            continue
        if not (interleaved(cells_a, repetition) and interleaved(cells_b, repetition)):
            apart += 1
            continue
        if touched(cells_a, repetition) or touched(cells_b, repetition):
            excluded += 1
            continue
        pairs.append(Pair(0.0, -1, repetition, a, b))
    if not pairs:
        one_sided = _one_sided(cells_a, cells_b, maxima_a, maxima_b, interleaved, touched)
        if one_sided is not None:
            verdict, why = one_sided
            return PairedComparison(label_a, label_b, metric, (), excluded, None, None, None, verdict, why)
        why = ("measured apart, not in interleaved rounds: two brackets minutes apart are no evidence"
               if apart else "no repetition found a max rate on both lines")
        if excluded:
            why += f"; {excluded} repetition(s) flagged by the calibration"
        return PairedComparison(label_a, label_b, metric, (), excluded, None, None, None,
                                "indistinguishable here", why)
    return judge_pairs(label_a, label_b, metric, pairs, excluded, mdd)


def _one_sided(
    cells_a: Sequence[CellSummary],
    cells_b: Sequence[CellSummary],
    maxima_a: dict[int, float | None],
    maxima_b: dict[int, float | None],
    interleaved: Callable[[Sequence[CellSummary], int], bool],
    touched: Callable[[Sequence[CellSummary], int], bool],
) -> tuple[str, str] | None:
    """A max-rate verdict without a ratio: in every interleaved, unflagged repetition one line found a
    max rate and the other found none and surely missed the SLO at a rate at or below that max (so its
    true max lies below the first line's; no ratio, as it has no max rate). "here" only: a one-sided
    count over a few repetitions is no interval."""
    for lower, (mine, theirs, maxima_mine, maxima_theirs) in (
            ("b lower here", (cells_a, cells_b, maxima_a, maxima_b)),
            ("a lower here", (cells_b, cells_a, maxima_b, maxima_a))):
        missed = [c.key.rate for c in theirs if c.usable and c.key.rate is not None and c.missed_surely]
        if not missed:
            continue
        lowest = min(missed)
        repetitions = [r for r in sorted(set(maxima_mine) | set(maxima_theirs))
                       if interleaved(mine, r) and interleaved(theirs, r) and not touched(mine, r)
                       and not touched(theirs, r)]
        if repetitions and all((maxima_mine.get(r) or 0.0) >= lowest and maxima_theirs.get(r) is None
                               for r in repetitions):
            best = min(maxima_mine[r] or 0.0 for r in repetitions)
            return lower, (f"{theirs[0].key.group.label()} met the SLO at no rate and surely missed it at "
                           f"{lowest:g}/s, where {mine[0].key.group.label()} met it up to {best:g}/s in the "
                           f"same rounds ({len(repetitions)} repetition(s); no ratio: one line has no max "
                           "rate)")
    return None
