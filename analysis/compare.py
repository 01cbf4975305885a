"""Before/after comparison of two results directories: p99 per matching cell, max rate per sweep line.

Cells match on server, protocol, mode, rate/concurrency, batch and configuration name; sweep lines on
server, protocol, configuration and batch. Delta = after - before (positive p99 delta = slower;
positive rate delta = more load under the SLO). Unmatched or unusable entries get a null delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.repetitions import CellSummary
from analysis.verdicts import SweepVerdict


@dataclass(frozen=True)
class Delta:
    label: str
    before: float | None
    after: float | None

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


def _usable_p99(cell: CellSummary | None) -> float | None:
    return cell.p99_ms.mean if cell is not None and cell.usable else None


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
    p99 = tuple(
        Delta(k.label(), _usable_p99(before_by_key.get(k)), _usable_p99(after_by_key.get(k))) for k in keys
    )
    before_lines = {v.group: v for v in before_verdicts}
    after_lines = {v.group: v for v in after_verdicts}
    rates = tuple(
        Delta(
            g.label(),
            before_lines[g].max_rate_under_slo if g in before_lines else None,
            after_lines[g].max_rate_under_slo if g in after_lines else None,
        )
        for g in sorted(set(before_lines) | set(after_lines))
    )
    return Comparison(before_name, after_name, p99, rates)
