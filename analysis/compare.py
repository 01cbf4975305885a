"""Before/after comparison of two results directories, and the regression gate built on it.

Cells match on server, protocol, mode, rate/concurrency, batch and configuration name; sweep lines on
server, protocol, configuration and batch. Delta = after - before (positive p99 delta = slower;
positive rate delta = more load under the SLO). Unmatched or unusable entries get a null delta.

Beyond the noise: a change is called only when the two intervals do not overlap (each side's own
noise, measured in its own run): p99 at a rate is *worse* when after's lower bound is above
before's upper bound; the max rate under the SLO is *worse* when after's bracket lies wholly below
before's (after's high end, exclusive, at or below before's low end). Otherwise "indistinguishable".
Each cell is tested on its own at 95 % (no correction for testing many cells).
Two directories measured with different models, SLOs or TF Serving kinds are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.errors import ResultsError
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

    @property
    def regressions(self) -> tuple[Delta, ...]:
        """Every p99 or max rate that got worse beyond the noise of both runs."""
        return tuple(d for d in (*self.max_rate_under_slo, *self.p99_ms) if d.verdict == WORSE)


def _p99_verdict(before: Estimate, after: Estimate) -> str:
    if before.value is None or after.value is None:
        return UNKNOWN
    if after.separates_above(before):
        return WORSE
    if before.separates_above(after):
        return BETTER
    if None in (before.low, before.high, after.low, after.high):
        return UNKNOWN
    return SAME


def _rate_verdict(before: SweepVerdict | None, after: SweepVerdict | None) -> str:
    if before is None or after is None:
        return UNKNOWN
    if after.max_rate_high is not None and before.max_rate_low is not None:
        if after.max_rate_high <= before.max_rate_low:
            return WORSE
    if before.max_rate_high is not None and after.max_rate_low is not None:
        if before.max_rate_high <= after.max_rate_low:
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


def compare(
    before_name: str,
    before_cells: Sequence[CellSummary],
    before_verdicts: Sequence[SweepVerdict],
    after_name: str,
    after_cells: Sequence[CellSummary],
    after_verdicts: Sequence[SweepVerdict],
) -> Comparison:
    before_by_key = {c.key: c for c in before_cells}
    after_by_key = {c.key: c for c in after_cells}
    keys = sorted(
        set(before_by_key) | set(after_by_key),
        key=lambda k: (k.group, k.rate or 0.0, k.concurrency or 0),
    )
    p99 = []
    for k in keys:
        before, after = _usable_p99(before_by_key.get(k)), _usable_p99(after_by_key.get(k))
        p99.append(Delta(k.label(), before.value, after.value, before, after, _p99_verdict(before, after)))
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
                _rate_verdict(before_line, after_line),
            )
        )
    return Comparison(before_name, after_name, tuple(p99), tuple(rates))
