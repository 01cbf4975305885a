"""`inferload aa MATRIX`: an A/A check: the smallest difference this machine can tell apart right now.

Runs the matrix's lines matching `--lines` (default: all), each measured twice in every round, as arms
`a` and `b` of the same configuration (the matrix's `aa:` section; inferload/rounds.py interleaves them),
then prints, per metric, how far the arms differ (analysis/aa.py): a difference between two lines
below that figure is "indistinguishable here". `--repetitions`, `--rates` and `--duration` shorten or
lengthen the matrix for the check without editing it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run_aa", "with_arms"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "aa",
        help="A/A check: measure one configuration as two interleaved arms, print what can be told apart",
        description="Run MATRIX with every line (or those matching --lines) measured twice per round, as "
        "arms a and b of the same configuration, then print per metric the smallest difference this "
        "machine can tell apart now (below it: indistinguishable here).",
    )
    parser.add_argument("experiment", type=Path, help="matrix file, e.g. experiments/protocols.yaml")
    parser.add_argument(
        "--lines",
        default="*",
        metavar="PATTERN",
        help="the lines measured twice (a shell pattern on line ids such as "
        "`tfserving-grpc-b1-default`; default: every line)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results directory (default results/NAME-aa)")
    parser.add_argument("--repetitions", type=int, default=None, help="override the matrix's repetitions")
    parser.add_argument(
        "--rates",
        default=None,
        metavar="R1,R2",
        help="override an open-loop matrix's rates (req/s, comma-separated)",
    )
    parser.add_argument("--duration", type=float, default=None, help="override the matrix's duration_s")
    parser.add_argument(
        "--artifacts", type=Path, default=None, help="artifacts directory (default: per model)"
    )
    parser.add_argument(
        "--free-ports", action="store_true", help="servers on free ports, not the standard ones"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the cells and the time estimate, run nothing")
    parser.set_defaults(func=run_aa)


def with_arms(
    experiment: Any,
    *,
    lines: str,
    repetitions: int | None = None,
    rates: str | None = None,
    duration_s: float | None = None,
) -> Any:
    """The matrix with `aa: {lines}` and the overrides, validated again (a bad override names its field)."""
    from inferload.experiments import Experiment, ExperimentError

    data = experiment.model_dump(mode="json")
    data["aa"] = {"lines": lines}
    if repetitions is not None:
        data["repetitions"] = repetitions
    if duration_s is not None:
        data["duration_s"] = duration_s
    if rates is not None:
        if data["load"].get("search") is not None or data["load"]["mode"] != "open":
            raise ExperimentError(
                "--rates overrides an open-loop matrix's `rates`; this matrix "
                f"{'searches its rates' if data['load'].get('search') else 'is closed-loop'}"
            )
        try:
            data["load"]["rates"] = [float(rate) for rate in rates.split(",") if rate.strip()]
        except ValueError:
            raise ExperimentError(
                f"--rates {rates!r}: give numbers separated by commas, e.g. 40,80"
            ) from None
    data["time_budget_min"] = None  # the arms double the matrix: its budget was for one arm
    from pydantic import ValidationError

    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(str(exc)) from None


def run_aa(args: argparse.Namespace) -> int:
    from inferload.cli import UsageError
    from inferload.experiments import ExperimentError, load_experiment

    try:
        experiment = with_arms(
            load_experiment(args.experiment),
            lines=args.lines,
            repetitions=args.repetitions,
            rates=args.rates,
            duration_s=args.duration,
        )
    except ExperimentError as exc:
        raise UsageError(f"invalid experiment:\n{exc}") from None
    from inferload.cells import expand_cells, select_cells

    if not any(cell.arm == "b" for cell in expand_cells(experiment).cells):
        raise UsageError(
            f"--lines {args.lines!r} matches no line of {args.experiment} (line ids look like "
            "`tfserving-grpc-b1-default`)"
        )
    out = args.out or Path("results") / f"{experiment.name}-aa"
    if args.dry_run:
        from inferload.commands.run import print_plan

        print_plan(select_cells(expand_cells(experiment), args.lines), experiment, out)
        return 0
    from inferload.commands.run import interrupt_on_sigterm
    from inferload.runner import RunError, run_experiment
    from serving.ports import Ports

    ports = Ports.free() if args.free_ports else Ports()
    previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    try:
        result = run_experiment(
            experiment,
            out,
            progress=not args.no_progress,
            artifacts_dir=args.artifacts,
            ports=ports,
            measure_floor=False,
            only=args.lines,  # the A/A lines only: both arms of each
        )
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except RunError as exc:
        print(f"inferload aa: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    for line in aa_lines(out):
        print(line)
    return 1 if result.failed else 0


def aa_lines(results_dir: Path) -> list[str]:
    """The A/A figure of a results directory, one metric a line."""
    from analysis import read_results
    from analysis.aa import aa_pairs, judged_pairs, mdd_table

    results = read_results(results_dir)
    pairs, judged = aa_pairs(results.runs), judged_pairs(results.runs, results.cells)
    lines = [
        f"A/A check ({len(pairs)} pairs of arms a and b measured back to back in one round, {results_dir}; "
        f"the figures from the {len(judged)} a comparison would judge: no run flagged by the machine "
        "watch, not past the SLO in both arms):"
    ]
    lines += [f"  {mdd.describe()}" for mdd in mdd_table(results.runs, results.cells)]
    lines.append(
        "  (95 % prediction bound of one pair's ratio from the A/A pairs' spread; see analysis/aa.py)"
    )
    return lines
