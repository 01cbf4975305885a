"""`inferload demo`: the main job end to end, ending with the answer to the project's question.

By default it runs `experiments/demo.yaml`: the full-size model (64 x 262,144) on both servers x all
three protocols, each line's max rate under the SLO found by the max-rate search (inferload/search.py),
then writes the report and prints the headline: which server and protocol sustains the most under the
SLO, by how much, and how sure (the analysis' brackets on each max rate). `--smoke` runs the small
smoke matrix instead (what CI runs: it proves the chain, its numbers say nothing).

It is exactly `inferload run` then `inferload report` (so the demo cannot drift from the real
commands), plus the headline computed from the analysis' own verdicts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inferload_formats import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "experiments" / "demo.yaml"
SMOKE = REPO_ROOT / "experiments" / "smoke.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="answer the question end to end: full-size model, 6 max-rate searches, report, headline",
        description="Run experiments/demo.yaml (full-size model, max-rate search on every server x "
        "protocol; about 5 minutes on a 2-core machine), write its report and print the headline. "
        "--smoke runs the small smoke matrix instead (what CI runs).",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="run experiments/smoke.yaml (small model, one short cell per line) instead")
    parser.add_argument("--experiment", type=Path, default=None,
                        help="another matrix (default: experiments/demo.yaml; smoke.yaml with --smoke)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results directory (default results/demo, or results/smoke with --smoke)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from inferload.cli import UsageError, main

    if args.smoke and args.experiment is not None:
        raise UsageError("give either --smoke or --experiment, not both")
    experiment = args.experiment or (SMOKE if args.smoke else DEMO)
    out = args.out or Path("results") / ("smoke" if args.smoke else "demo")
    started = time.monotonic()
    status = main(["run", str(experiment), "--out", str(out)])
    if status != 0:
        return status
    status = main(["report", str(out)])
    if status != 0:
        return status
    print()
    for line in headline(out):
        print(line)
    elapsed = time.monotonic() - started
    print(f"\nreport: {(out / 'report.html').resolve()}  ({elapsed / 60:.1f} min)", file=sys.stderr)
    return 0


def headline(results_dir: Path) -> list[str]:
    """Which server x protocol sustains the most under the SLO, by how much, how sure (from the analysis)."""
    from analysis import read_results
    from analysis.verdicts import best_configuration, sweep_verdicts

    results = read_results(results_dir)
    verdicts = sweep_verdicts(results.cells)
    return headline_lines(verdicts, best_configuration(verdicts), slo=results.slo.describe(),
                          model=_model_words(results.manifest))


def _model_words(manifest: Manifest | None) -> str:
    if manifest is None:
        return "the model"
    model = manifest.model
    return f"model {model.classes} x {model.features:,}, {manifest.matrix.repetitions} repetition(s)"


def headline_lines(verdicts: Sequence[Any], best: Any, *, slo: str, model: str) -> list[str]:
    """The headline from `analysis.verdicts` objects (SweepVerdict, BestConfiguration)."""
    names = _short_names(verdicts)
    unit = "req/s" if all(v.group.batch == 1 for v in verdicts) else "predictions/s"
    lines = [f"HEADLINE ({model}; SLO {slo})"]
    if best.group is None:
        return [*lines, f"  no server and protocol met the SLO: {best.note}"]
    winner = next(v for v in verdicts if v.group == best.group)
    won = winner.sustained_predictions
    sure = ("" if winner.max_rate_surely_met is not False
            else "; met, but not surely (p99 interval straddles the bound)")
    lines.append(f"  {names[winner.group]} sustains the most: {_num(won.value)} {unit} under the SLO "
                 f"(true max in {_bracket(won)}){sure}")
    others = sorted((v for v in verdicts if v is not winner),
                    key=lambda v: -(v.sustained_predictions.value or 0.0))
    for other in others:
        theirs = other.sustained_predictions
        if theirs.value is None:
            if other.rates_measured and len(other.excluded) == len(other.rates_measured):
                lines.append(f"  vs {names[other.group]}: not determined here (every step was excluded: "
                             "generator-invalid or failed; see report.html)")
            else:
                surely = ("; surely less than the winner (the brackets separate)" if winner.beats(other)
                          else "")
                lines.append(f"  vs {names[other.group]}: no rate met the SLO ({other.max_rate_note})"
                             f"{surely}")
            continue
        ratio = f"{won.value / theirs.value:.2f}x" if won.value and theirs.value else "n/a"
        head = (f"  vs {names[other.group]} ({_num(theirs.value)} {unit}, true max in {_bracket(theirs)}): "
                f"{ratio}")
        if winner.beats(other):
            floor = won.low / theirs.high if won.low and theirs.high else None
            surely = f"at least {floor:.2f}x" if floor is not None else "more"
            lines.append(f"{head}; surely more ({surely}: the brackets separate)")
        else:
            lines.append(f"{head}; indistinguishable here (the brackets overlap)")
    excluded = sum(len(v.excluded) for v in verdicts)
    if excluded:
        steps = sum(len(v.rates_measured) for v in verdicts)
        lines.append(f"  caution: {excluded} of {steps} measured rates were excluded (the load generator "
                     "could not keep its schedule, or the cell failed): those rates could not be judged "
                     "on this machine now; a busy machine narrows what the headline can say")
    lines.append(
        "  how sure: each bracket runs from the highest rate surely meeting the SLO to the lowest surely "
        "missing it (95 % exact order-statistic intervals on each step's p99; with repetitions, their "
        "spread); a line is 'surely' ahead only when the brackets separate. A bracket that stays open "
        "(∞) was not bounded by this run (e.g. the generator could not offer more); see report.html.")
    return lines


def _short_names(verdicts: Sequence[Any]) -> dict[Any, str]:
    """`tfserving grpc` when server x protocol names the line uniquely, else the analysis' full label."""
    pairs = [(v.group.server, v.group.protocol) for v in verdicts]
    unique = len(set(pairs)) == len(pairs)
    return {v.group: f"{v.group.server} {v.group.protocol}" if unique else v.group.label() for v in verdicts}


def _bracket(estimate: Any) -> str:
    left = f"[{_num(estimate.low)}" if estimate.low is not None else "(0"
    right = f"{_num(estimate.high)})" if estimate.high is not None else "∞)"
    return f"{left}, {right}"


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
