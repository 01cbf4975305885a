"""Before/after comparison of two results directories, and the regression gate built on it.

Cells match on server, protocol, mode, rate/concurrency, batch and configuration name; sweep lines on
server, protocol, configuration and batch. Delta = after - before (positive p99 delta = slower;
positive rate delta = more load under the SLO). Unmatched or unusable entries get a null delta.

Beyond the noise: a change is called only when the two intervals do not overlap (each side's own
noise, measured in its own run) and the change is at least the threshold below: p99 at a rate is
*worse* when after's lower bound is above before's upper bound and the p99 grew by the threshold; the
max rate under the SLO is *worse* when after's bracket lies wholly below before's by the threshold
(after's high end, exclusive, x (1 + threshold) at or below before's low end: the true maximum fell by
that much wherever it was inside the brackets). Otherwise "indistinguishable". Two 95 % intervals
apart is a far stricter test than 5 %, so these are not corrected further.

The whole distribution of every matched cell is compared too (`shifts`, analysis/gate.py): a rank
test over the two runs' time slices, Holm-corrected across the cells, worse only beyond a threshold
(the A/A minimum detectable difference of the median when either run measured one, else the gate's
pace tolerance). That is what catches a uniform slowdown a p99 interval of a few hundred requests
hides.

Two directories measured with different models, SLOs or TF Serving kinds are refused; the gate
(`--fail-on-regression`, `check_gateable`) also refuses two runs from different machines or between
which the machine's calibration drifted beyond the tolerance, naming both figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.errors import ResultsError
from analysis.gate import (
    FLAGGED,
    OVERLOADED,
    PACE_TOLERANCE,
    CellShift,
    Pace,
    check_same_machine,
    check_same_pace,
    judge_cells,
)
from analysis.intervals import MISSING, Estimate
from analysis.repetitions import CellSummary
from analysis.verdicts import SweepVerdict

if TYPE_CHECKING:  # results.py reads whole directories; this module only compares what they hold
    from analysis.results import Results

WORSE, BETTER, SAME, UNKNOWN = "worse", "better", "indistinguishable", "not comparable"


@dataclass(frozen=True)
class Delta:
    label: str
    before: float | None
    after: float | None
    before_interval: Estimate = MISSING
    after_interval: Estimate = MISSING
    verdict: str = UNKNOWN  # WORSE, BETTER, SAME or UNKNOWN (a side is missing or has no interval)

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def change_percent(self) -> float | None:
        change = self.change
        if change is None or not self.before:
            return None
        return 100.0 * change / self.before


@dataclass(frozen=True)
class Comparison:
    before_name: str
    after_name: str
    p99_ms: tuple[Delta, ...]
    max_rate_under_slo: tuple[Delta, ...]
    shifts: tuple[CellShift, ...] = ()  # each matched cell's whole latency distribution
    threshold: float = PACE_TOLERANCE  # the smallest latency ratio the shifts call worse (0.1: +10 %)
    threshold_source: str = "the gate's pace tolerance (no A/A check in either run)"
    pace: Pace | None = None  # the machine's calibration in both runs

    @property
    def regressions(self) -> tuple[Delta, ...]:
        """Every p99 or max rate that got worse beyond the noise of both runs."""
        return tuple(d for d in (*self.max_rate_under_slo, *self.p99_ms) if d.verdict == WORSE)

    @property
    def shifted_worse(self) -> tuple[CellShift, ...]:
        """Every cell whose latency distribution moved up beyond the noise and the threshold."""
        return tuple(s for s in self.shifts if s.verdict == WORSE)


def _p99_verdict(before: Estimate, after: Estimate, threshold: float = 0.0) -> str:
    """Worse: the intervals separate and the p99 grew by the threshold at least (better: the mirror)."""
    if before.value is None or after.value is None:
        return UNKNOWN
    if after.separates_above(before) and after.value >= before.value * (1 + threshold):
        return WORSE
    if before.separates_above(after) and before.value >= after.value * (1 + threshold):
        return BETTER
    if None in (before.low, before.high, after.low, after.high):
        return UNKNOWN
    return SAME


def _rate_verdict(before: SweepVerdict | None, after: SweepVerdict | None, threshold: float = 0.0) -> str:
    """Worse: after's bracket lies below before's by the threshold at least (the true max fell by that
    much whatever it was inside the brackets); better: the mirror image."""
    if before is None or after is None:
        return UNKNOWN
    if after.max_rate_high is not None and before.max_rate_low is not None:
        if after.max_rate_high * (1 + threshold) <= before.max_rate_low:
            return WORSE
    if before.max_rate_high is not None and after.max_rate_low is not None:
        if before.max_rate_high * (1 + threshold) <= after.max_rate_low:
            return BETTER
    return SAME


def _rate_bracket(verdict: SweepVerdict | None) -> Estimate:
    if verdict is None:
        return MISSING
    return Estimate(
        verdict.max_rate_under_slo, verdict.max_rate_low, verdict.max_rate_high, verdict.max_rate_method
    )


def _usable_p99(cell: CellSummary | None) -> Estimate:
    return cell.p99 if cell is not None and cell.usable else MISSING


def check_comparable(before: Results, after: Results) -> None:
    """Refuse two `analysis.results.Results` measured under different models, SLOs or TF Serving
    kinds (or a directory whose TF Serving cells mix kinds): their numbers answer different questions."""
    for experiment in (before, after):
        kinds = sorted({r.server_kind for r in experiment.runs
                        if r.key.server == "tfserving" and r.server_kind})
        if len(kinds) > 1:
            raise ResultsError(
                f"{experiment.path}: its TF Serving cells ran on different kinds ({', '.join(kinds)}); "
                "compare results measured with one kind"
            )
    differences = []
    before_model, after_model = before.model, after.model
    if before_model and after_model and before_model != after_model:
        differences.append(f"model {before_model.model_dump()} vs {after_model.model_dump()}")
    if before.slo != after.slo:
        differences.append(f"SLO '{before.slo.describe()}' vs '{after.slo.describe()}'")
    if before.tfserving_kind and after.tfserving_kind and before.tfserving_kind != after.tfserving_kind:
        differences.append(f"TF Serving kind {before.tfserving_kind} vs {after.tfserving_kind}")
    if differences:
        raise ResultsError(
            f"cannot compare {before.path} (before) with {after.path} (after): they differ in "
            + "; ".join(differences)
            + ". Compare runs of the same model, SLO and TF Serving kind"
        )


def pace_of(before: Results, after: Results) -> Pace:
    """The two runs' calibration figures (median predict ms, no load)."""
    from analysis.drift import calibration_ms

    first, second = calibration_ms(before.calibration), calibration_ms(after.calibration)
    if first is not None and second is not None and first[1] != second[1]:
        return Pace(None, None, None)  # calibrated at different batch sizes: not comparable
    return Pace(first[0] if first else None, second[0] if second else None,
                (first or second or (None, None))[1])


def check_gateable(before: Results, after: Results) -> Pace:
    """Refuse (ResultsError) to gate `after` against `before` when they ran on different machines or
    the machine's calibration drifted between them beyond the tolerance; else their `Pace`."""
    before_name, after_name = str(before.path), str(after.path)
    check_same_machine(before.manifest.machine if before.manifest else None,
                       after.manifest.machine if after.manifest else None, before_name, after_name)
    pace = pace_of(before, after)
    check_same_pace(pace, before_name, after_name)
    return pace


def threshold_of(before: Results, after: Results) -> tuple[float, str]:
    """The smallest latency ratio a shift may be called worse at, and where it comes from: the A/A
    minimum detectable difference of the median latency over both runs' judged A/A pairs pooled (the
    pairs the gate would compare: `aa.judged_pairs`), else the pace tolerance.

    Pooled, not the larger of the two runs' figures: both runs measured the same twin on the same
    machine at a checked pace, and a figure is a prediction bound whose t factor explodes with few
    pairs (t(0.975, 1) = 12.7: a demo's two pairs 17 % apart gave ±3,073 %, a gate nothing could fail).
    """
    from analysis.aa import METRICS, judged_pairs, minimum_detectable_difference

    median = METRICS["p50 latency"]
    values = [(a, b) for experiment in (before, after)
              for pair in judged_pairs(experiment.runs, experiment.cells)
              if (a := median(pair.a)) is not None and (b := median(pair.b)) is not None]
    mdd = minimum_detectable_difference("p50 latency", values)
    if mdd.mdd is None:
        return PACE_TOLERANCE, (f"the gate's pace tolerance, ±{PACE_TOLERANCE:.0%} (" + (
            "no A/A check in either run" if not values else
            f"the A/A pairs of both runs give no figure: {mdd.pairs} pair(s)") + ")")
    return max(mdd.mdd, 0.0), (f"the A/A minimum detectable difference of the median over both runs' "
                               f"{mdd.pairs} A/A pairs, ±{mdd.mdd:.0%}")


def _missed(cell: CellSummary | None) -> bool:
    return cell is not None and cell.slo_status == "missed"


def _slices(cell: CellSummary | None) -> list[float] | None:
    if cell is None or not cell.usable:
        return None
    return [value for run in cell.runs if run.usable for value in run.measured.latency_slices]


def compare(
    before_name: str,
    before_cells: Sequence[CellSummary],
    before_verdicts: Sequence[SweepVerdict],
    after_name: str,
    after_cells: Sequence[CellSummary],
    after_verdicts: Sequence[SweepVerdict],
    *,
    threshold: tuple[float, str] | None = None,
    pace: Pace | None = None,
    flagged: frozenset[str] = frozenset(),
) -> Comparison:
    """The after run against the before run, cell by cell and line by line. `flagged`: the cell ids of
    runs the machine watch flagged in either run (analysis/drift.py), listed but not judged."""
    before_by_key = {c.key: c for c in before_cells}
    after_by_key = {c.key: c for c in after_cells}
    keys = sorted(
        set(before_by_key) | set(after_by_key),
        key=lambda k: (k.group, k.rate or 0.0, k.concurrency or 0),
    )
    limit, source = threshold or (PACE_TOLERANCE, f"the gate's pace tolerance, ±{PACE_TOLERANCE:.0%}")
    overloaded = frozenset(k.label() for k in keys
                           if _missed(before_by_key.get(k)) and _missed(after_by_key.get(k)))
    flagged_cells = frozenset(k.label() for k in keys for cell in (before_by_key.get(k), after_by_key.get(k))
                              if cell is not None and any(run.cell_id in flagged for run in cell.runs))
    p99 = []
    for k in keys:
        before, after = _usable_p99(before_by_key.get(k)), _usable_p99(after_by_key.get(k))
        verdict = (OVERLOADED if k.label() in overloaded else FLAGGED if k.label() in flagged_cells
                   else _p99_verdict(before, after, limit))
        p99.append(Delta(k.label(), before.value, after.value, before, after, verdict))
    before_lines = {v.group: v for v in before_verdicts}
    after_lines = {v.group: v for v in after_verdicts}
    rates = []
    for g in sorted(set(before_lines) | set(after_lines)):
        before_line, after_line = before_lines.get(g), after_lines.get(g)
        rates.append(
            Delta(
                g.label(),
                before_line.max_rate_under_slo if before_line else None,
                after_line.max_rate_under_slo if after_line else None,
                _rate_bracket(before_line),
                _rate_bracket(after_line),
                _rate_verdict(before_line, after_line, limit),
            )
        )
    shifts = judge_cells(
        [(k.label(), _slices(before_by_key.get(k)), _slices(after_by_key.get(k))) for k in keys],
        threshold=limit, overloaded=overloaded, flagged=flagged_cells,
    )
    return Comparison(before_name, after_name, tuple(p99), tuple(rates), tuple(shifts), limit, source, pace)
