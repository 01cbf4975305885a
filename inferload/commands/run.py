"""`inferload run experiments/NAME.yaml`: run a matrix headless and resumably into results/NAME."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from inferload.cli import UsageError

if TYPE_CHECKING:
    from inferload.cells import Cell, CellPlan
    from inferload.experiments import Experiment


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run an experiment matrix (resumable)",
        description="Export the model if needed, start each server per configuration, run every cell of "
        "the matrix and write records, server metrics and a manifest into results/NAME. Rerunning "
        "skips finished cells; an interrupted or failed cell is redone.",
    )
    parser.add_argument("experiment", type=Path, help="matrix file, e.g. experiments/smoke.yaml")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default results/NAME)")
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="model artifacts directory (default artifacts/<classes>x<features>-s<seed>)")
    parser.add_argument("--only", default=None, metavar="PATTERN",
                        help="run only cells whose id matches (glob like '*grpc*', or a substring)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the cells and the estimated duration; start nothing")
    parser.add_argument("--free-ports", action="store_true",
                        help="start the servers on free ports instead of the standard ones "
                        "(when another stack already holds them)")
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS",
                        help="after the sweep, bisect each line's max rate under the SLO this many "
                        "times (one extra cell per bracketed line and step; open loop only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the in-process floor (floor.json: seconds of TensorFlow and PyTorch "
                        "start-up); the report then shows no model compute floor")
    parser.set_defaults(func=run)


def _refine(args: argparse.Namespace, experiment: Experiment, out: Path, ports: object) -> int:
    """Bisect each line's max rate under the SLO (inferload/search.py, `refine`); returns the cells run."""
    from analysis import read_results
    from analysis.verdicts import sweep_verdicts
    from inferload.runner import run_experiment
    from inferload.search import refine

    def run_cells(extended: Experiment, only: str) -> None:
        run_experiment(extended, out, progress=not args.no_progress, artifacts_dir=args.artifacts,
                       only=only, ports=ports, measure_floor=False)

    def read_verdicts(results: Path) -> list:
        return sweep_verdicts(read_results(results).cells)

    return len(refine(experiment, out, steps=args.refine, run_cells=run_cells, read_verdicts=read_verdicts))


def run(args: argparse.Namespace) -> int:
    from inferload.cells import expand_cells, select_cells
    from inferload.experiments import ExperimentError, load_experiment

    try:
        experiment = load_experiment(args.experiment)
    except ExperimentError as exc:
        raise UsageError(f"invalid experiment:\n{exc}") from None
    out = args.out or Path("results") / experiment.name
    for note in experiment.notes:
        print(f"note: {note}", file=sys.stderr)
    plan = select_cells(expand_cells(experiment), args.only)
    if not plan.cells and not plan.skipped:
        raise UsageError(f"--only {args.only!r} matches no cell of {args.experiment}; see --dry-run")
    if args.refine > 0:
        from inferload.search import check_refinable

        try:
            check_refinable(experiment)  # before the sweep, not after it
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.dry_run:
        print_plan(plan, experiment, out)
        return 0

    from inferload.runner import RunError, run_experiment
    from serving.ports import Ports

    ports = Ports.free() if args.free_ports else Ports()
    previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    try:
        result = run_experiment(experiment, out, progress=not args.no_progress,
                                artifacts_dir=args.artifacts, only=args.only, ports=ports,
                                measure_floor=not args.no_floor)
        refined = _refine(args, experiment, out, ports) if args.refine > 0 else 0
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except RunError as exc:
        print(f"inferload run: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{len(result.done)} cell(s) done, {len(result.failed)} failed, "
          f"{len(result.already_done)} already done, {len(result.skipped)} skipped; results in {out}")
    if args.refine > 0:
        print(f"refinement: {refined} bisection step(s) run (see the refine lines above)")
    for cell_id in result.failed:
        print(f"  failed: {cell_id} (see {out / 'cells' / cell_id / 'cell.json'})")
    print(f"next: inferload report {out}")
    return 1 if result.failed else 0


def interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops like Ctrl-C: servers down, finished cells kept."""
    raise KeyboardInterrupt


def _step_requests(experiment: Experiment) -> str:
    """The requests a search step is sized for, in words: the SLO percentile's need at the planned
    inflation (inferload/search.py)."""
    from analysis.percentiles import requests_needed
    from inferload.search import planned_inflation

    inflation = planned_inflation(experiment)
    needed = requests_needed(experiment.slo.percentile, inflation)
    return f"{needed:,} (the p{experiment.slo.percentile:g}'s need at variance inflation {inflation:g})"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


def print_plan(plan: CellPlan, experiment: Experiment, out: Path) -> None:
    from inferload.rounds import sweep_order

    seconds = plan.estimated_seconds(experiment)
    search = experiment.load.search
    # a sweep's cells in the order its rounds run them; a search's first steps (its rounds decide the rest)
    ordered: list[tuple[int | None, Cell]] = [(None, cell) for cell in plan.cells]
    if search is None:
        ordered = list(sweep_order(plan.cells, experiment.schedule_seed))
    for round_index, cell in ordered:
        where = "" if round_index is None else f"round {round_index:<3} "
        print(f"{where}{cell.cell_id:<52} {cell.server:<10} {cell.protocol:<11} b{cell.batch:<5} "
              f"{cell.level:<16} ~{_size(cell.body_bytes)}/request")
    for skip in plan.skipped:
        print(f"skip {skip.cell_id}: {skip.reason}")
    if search is not None:
        print(f"{len(plan.cells)} line(s) to search from {search.start:g} req/s (x{search.factor:g} up to "
              f"{search.max:g}, then {search.bisect_steps} bisection(s)), {len(plan.skipped)} skipped; "
              f"estimated {seconds / 60:.1f} min (each step {experiment.warmup_s:g} s warm-up + "
              f"max({experiment.duration_s:g} s, 1.2 x {_step_requests(experiment)} requests / rate)"
              f"{_early_stop_words(experiment, step=True)}); results would go to {out}")
        return
    at_most, up_to = ("at most ", "up to ") if experiment.early_stop is not None else ("", "")
    print(f"{len(plan.cells)} cell(s) to run, {len(plan.skipped)} skipped; estimated {at_most}"
          f"{seconds / 60:.1f} min ({experiment.warmup_s:g} s warm-up + {up_to}"
          f"{experiment.longest_duration_s:g} s per cell + server starts"
          f"{_early_stop_words(experiment, step=False)}); results would go to {out}", file=sys.stdout)


def _early_stop_words(experiment: Experiment, *, step: bool) -> str:
    """How early stopping bounds the estimate: every cell counted at its cap."""
    rule = experiment.early_stop
    if rule is None:
        return ""
    if step:
        return (f", or up to {rule.max_duration_s:g} s with early_stop: the estimate counts every step "
                "at its longest, an upper bound")
    return (f"; early_stop: each cell stops between {experiment.duration_s:g} and "
            f"{rule.max_duration_s:g} s, so this is an upper bound")
