"""Refine the maximum Poisson rate under the SLO by bisection, after a rate sweep.

A sweep brackets each line's maximum between the last rate that met the SLO and the first usable
rate that missed it (doubling steps leave a factor of two). Each refinement step runs one more cell
per bracketed line at the bracket's midpoint, into the same results directory, as an ordinary cell
of the matrix extended by that rate — so the report, resume and the manifest treat it like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferload.cells import expand_cells
from inferload.experiments import Experiment

# Stop bisecting a line once its bracket is this narrow relative to its lower end: finer steps are
# below what one repetition on a shared machine can tell apart.
MIN_RELATIVE_GAP = 0.05


@dataclass(frozen=True)
class Bracket:
    """One sweep line's bracket: `low` met the SLO, `high` (usable) missed it."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    low: float
    high: float

    @property
    def midpoint(self) -> float:
        return round_rate((self.low + self.high) / 2)

    def worth_splitting(self) -> bool:
        mid = self.midpoint
        return self.low < mid < self.high and (self.high - self.low) > MIN_RELATIVE_GAP * self.low


def check_refinable(experiment: Experiment) -> None:
    """Bisection moves Poisson rates: refuse a closed-loop matrix (before its sweep is run)."""
    if experiment.load.mode != "open":
        raise ValueError("--refine bisects Poisson rates: it needs an open-loop matrix (load.mode: open)")
    if experiment.load.search is not None:
        raise ValueError("--refine bisects a fixed rate list; this matrix's `load.search` bisects already "
                         "(raise its `bisect_steps` instead)")


def round_rate(rate: float) -> float:
    """Midpoints as rates people write (and cell ids stay short): whole req/s from 10 up."""
    return float(round(rate)) if rate >= 10 else round(rate, 1)


def brackets(verdicts: Iterable[Any]) -> list[Bracket]:
    """Brackets worth splitting, from `analysis` sweep verdicts (open-loop lines only)."""
    found = []
    for verdict in verdicts:
        if verdict.first_miss_rate is None:
            continue
        bracket = Bracket(
            server=verdict.group.server,
            protocol=verdict.group.protocol,
            server_config_name=verdict.group.server_config_name,
            batch=verdict.group.batch,
            low=verdict.max_rate_under_slo or 0.0,
            high=verdict.first_miss_rate,
        )
        if bracket.worth_splitting():
            found.append(bracket)
    return found


def with_rate(experiment: Experiment, rate: float) -> Experiment:
    """The same matrix with one more Poisson rate (a change the runner accepts on resume: it adds cells)."""
    rates = tuple(sorted({*(experiment.load.rates or ()), rate}))
    return experiment.model_copy(update={"load": experiment.load.model_copy(update={"rates": rates})})


def cell_ids_for(experiment: Experiment, bracket: Bracket) -> list[str]:
    """The ids of the midpoint cells (every repetition) of one bracket in the extended matrix."""
    return [
        cell.cell_id
        for cell in expand_cells(experiment).cells
        if (cell.server, cell.protocol, cell.server_config_name, cell.batch)
        == (bracket.server, bracket.protocol, bracket.server_config_name, bracket.batch)
        and cell.rate == bracket.midpoint
    ]


def refine(
    experiment: Experiment,
    out_dir: Path,
    *,
    steps: int,
    run_cells: Callable[[Experiment, str], None],
    read_verdicts: Callable[[Path], Iterable[Any]],
    note: Callable[[str], None] = print,
) -> list[Bracket]:
    """Bisect every bracketed line `steps` times; returns the brackets that were split.

    `run_cells(experiment, only_pattern)` runs the selected cells of a matrix into `out_dir` (the
    runner), `read_verdicts(out_dir)` re-reads the sweep verdicts (analysis): both injected so the
    bisection logic is tested without servers.
    """
    check_refinable(experiment)
    split: list[Bracket] = []
    for step in range(1, steps + 1):
        todo = brackets(read_verdicts(out_dir))
        if not todo:
            note(f"refine step {step}: every bracket is narrower than {MIN_RELATIVE_GAP:.0%}, or none missed")
            break
        for bracket in todo:
            experiment = with_rate(experiment, bracket.midpoint)
            note(
                f"refine step {step}: {bracket.server} {bracket.protocol} [{bracket.server_config_name}] "
                f"batch {bracket.batch}: max rate in [{bracket.low:g}, {bracket.high:g}) req/s, "
                f"trying {bracket.midpoint:g}"
            )
            for cell_id in cell_ids_for(experiment, bracket):
                run_cells(experiment, cell_id)
            split.append(bracket)
    return split
