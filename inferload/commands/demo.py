"""`inferload demo`: the main job end to end, ending with the answer to the project's question.

By default it runs `experiments/demo.yaml`: the full-size model (64 x 262,144) on every server x
protocol, each line's max rate under the SLO found by the max-rate search (inferload/search.py), the
lines interleaved in rounds (inferload/rounds.py) with one line measured twice as an A/A check, then
writes the report and prints the headline: which server and protocol sustains the most under the SLO
and by how much (the analysis' brackets on each max rate), the paired comparisons (the SLO
percentile of the lines' cells run back to back in one round, analysis/paired.py) against what the
A/A check says this machine can tell apart (analysis/aa.py), and how the machine itself moved (the
calibration, analysis/drift.py).
It says less rather than wrong: with one repetition there is no between-run interval, so nothing is
"surely"; below the A/A figure two lines are "indistinguishable here". `--smoke` runs the small smoke
matrix instead (what CI runs: it proves the chain, its numbers say nothing).

It is exactly `inferload run` then `inferload report` (so the demo cannot drift from the real
commands), plus the headline computed from the analysis' own verdicts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from inferload_formats import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "experiments" / "demo.yaml"
SMOKE = REPO_ROOT / "experiments" / "smoke.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="answer the question end to end: full-size model, 9 max-rate searches, report, headline",
        description="Run experiments/demo.yaml (full-size model, max-rate search on every server x "
        "protocol; about 6 minutes on a 2-core machine), write its report and print the headline. "
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
    """Which server x protocol sustains the most under the SLO, by how much, how sure (from the analysis),
    then the paired comparisons, the A/A figure and the machine's speed."""
    from analysis import read_results
    from analysis.aa import mdd_table
    from analysis.drift import machine_flags
    from analysis.paired import compare_max_rates
    from analysis.verdicts import best_configuration, sweep_verdicts

    results = read_results(results_dir)
    every = sweep_verdicts(results.cells)
    verdicts = [v for v in every if v.group.arm != "b"]  # the twin is the A/A's evidence, not a line
    best = best_configuration(verdicts)
    repetitions = results.manifest.matrix.repetitions if results.manifest is not None else 1
    flags = frozenset(machine_flags(results.runs))
    table = mdd_table(results.runs, results.cells)
    mdd = next((m.mdd for m in table if m.metric == "max rate under the SLO"), None)
    paired = {}
    if best.group is not None:
        mine = [c for c in results.cells if c.key.group == best.group]
        for verdict in verdicts:
            if verdict.group != best.group:
                theirs = [c for c in results.cells if c.key.group == verdict.group]
                paired[verdict.group] = compare_max_rates(mine, theirs, mdd=mdd, flagged=flags)
    lines = headline_lines(verdicts, best, slo=results.slo.describe(), model=_model_words(results.manifest),
                           repetitions=repetitions, paired=paired, percentile=results.slo.percentile)
    evidence = evidence_lines(results.runs, best.group, results.cells, percentile=results.slo.percentile)
    return [*lines, *evidence, *twin_lines(every)]


def twin_lines(verdicts: Sequence[Any]) -> list[str]:
    """The A/A twins' max-rate brackets side by side: how far this machine moves one line's answer."""
    lines = []
    for twin in (v for v in verdicts if v.group.arm == "b"):
        line = next((v for v in verdicts if v.group == replace(twin.group, arm="")), None)
        if line is None:
            continue
        a, b = line.sustained_predictions, twin.sustained_predictions
        same = "overlap" if not line.beats(twin) and not twin.beats(line) else "do not overlap"
        lines.append(f"  A/A max rate: {twin.group.server} {twin.group.protocol} searched twice: "
                     f"{_bracket(a)} and {_bracket(b)} (the brackets {same})")
    return lines


def _model_words(manifest: Manifest | None) -> str:
    if manifest is None:
        return "the model"
    model = manifest.model
    return f"model {model.classes} x {model.features:,}, {manifest.matrix.repetitions} repetition(s)"


def _line_key(group: Any) -> tuple[Any, ...]:
    """A sweep line apart from its arm and mode (`analysis.keys.GroupKey`)."""
    return (group.server, group.protocol, group.batch, group.server_config_name, group.repeat_share)


def evidence_lines(runs: Sequence[Any], winner: Any, cells: Sequence[Any] = (), *,
                   percentile: float = 99.0) -> list[str]:
    """The paired comparisons of the winner against every other line (the SLO's percentile, p`percentile`,
    at the rates both ran in one round), the A/A figure they are judged against, and the machine's speed
    over the run."""
    from analysis.aa import aa_pairs, mdd_sentence, mdd_table, slo_metric
    from analysis.drift import TOLERANCE, machine_flags, speed_range
    from analysis.paired import compare_lines

    flags = set(machine_flags(runs))
    table = mdd_table(runs, cells)
    metric = slo_metric(percentile)
    mdd = next((m.mdd for m in table if m.metric == metric), None)
    by_line: dict[tuple[Any, ...], list[Any]] = {}
    for run in runs:
        if run.arm != "b":
            by_line.setdefault(_line_key(run.key.group), []).append(run)
    lines: list[str] = []
    mine = by_line.get(_line_key(winner), []) if winner is not None else []
    if mine:
        lines.append(f"  paired (p{percentile:g} of cells run back to back in one round, at the rates both "
                     "ran):")
        for key, theirs in by_line.items():
            if key != _line_key(winner):
                comparison = compare_lines(mine, theirs, metric=metric, mdd=mdd, flagged=flags)
                lines.append(f"    {comparison.describe()}")
    pairs = aa_pairs(runs)
    lines.append(f"  {mdd_sentence(table)}")
    if pairs:
        lines.append(f"  A/A ({pairs[0].line} measured twice in every round, {len(pairs)} pair(s)):")
        lines += [f"    {m.describe()}" for m in table]
    speed = speed_range(runs)
    if speed is not None:
        low, median, high = speed
        lines.append(f"  machine: the model's in-process predict took {low:.3g}-{high:.3g} ms (median "
                     f"{median:.3g}) in the calibrations between rounds, a spread of "
                     f"{(high - low) / median:.0%} of the median")
    if flags:
        flagged = machine_flags(runs)
        shown = "; ".join(f"{cell}: {reasons[0]}" for cell, reasons in sorted(flagged.items())[:3])
        lines.append(f"  caution: {len(flags)} cell(s) ran while the machine was off by more than "
                     f"{TOLERANCE:.0%} (left out of the paired verdicts): {shown}"
                     + (" ..." if len(flags) > 3 else ""))
    elif speed is not None:
        lines.append(f"  no cell ran while the machine was off by more than {TOLERANCE:.0%}")
    return lines


def headline_lines(verdicts: Sequence[Any], best: Any, *, slo: str, model: str,
                   repetitions: int = 1, paired: Mapping[Any, Any] | None = None,
                   percentile: float = 99.0) -> list[str]:
    """The headline from `analysis.verdicts` objects (SweepVerdict, BestConfiguration) and the winner's
    paired comparisons (`paired`: line -> `analysis.paired.compare_max_rates(winner, line)`). Only the
    pairs judge "A beats B": the ratio of the two lines' max rates in each repetition (interleaved
    rounds), with its interval over repetitions, beyond the A/A figure. Two brackets measured apart are
    shown, never taken as evidence; one repetition is never "surely"."""
    names = _short_names(verdicts)
    unit = "req/s" if all(v.group.batch == 1 for v in verdicts) else "predictions/s"
    lines = [f"HEADLINE ({model}; SLO {slo})"]
    if best.group is None:
        return [*lines, f"  no best server and protocol: {best.note}"]
    winner = next(v for v in verdicts if v.group == best.group)
    won = winner.sustained_predictions
    sure = ("" if winner.max_rate_surely_met is not False
            else f"; met, but not surely (p{percentile:g} interval straddles the bound)")
    tied = [names[v.group] for v in verdicts
            if v is not winner and won.value is not None and v.sustained_predictions.value == won.value]
    who = (f"{names[winner.group]} has" if not tied else
           f"{_and([names[winner.group], *tied])} share")  # which of equals the analysis names is arbitrary
    lines.append(f"  {who} the highest max rate here: {_num(won.value)} {unit} under the SLO (true max in "
                 f"{_bracket(won)}){sure}" + (f"; the others are compared with {names[winner.group]}"
                                              if tied else ""))
    others = sorted((v for v in verdicts if v is not winner),
                    key=lambda v: -(v.sustained_predictions.value or 0.0))
    for other in others:
        theirs = other.sustained_predictions
        verdict = _paired_words((paired or {}).get(other.group), names[winner.group], names[other.group])
        if theirs.value is None:
            if other.rates_measured and len(other.excluded) == len(other.rates_measured):
                lines.append(f"  vs {names[other.group]}: not determined here (every step was excluded: "
                             "generator-invalid or failed; see report.html)")
            elif other.never_judged:
                lines.append(f"  vs {names[other.group]}: not judged at any rate ({other.max_rate_note}); "
                             f"{verdict}")
            else:
                lines.append(f"  vs {names[other.group]}: no rate met the SLO ({other.max_rate_note}); "
                             f"{verdict}")
            continue
        ratio = f"{won.value / theirs.value:.2f}x" if won.value and theirs.value else "n/a"
        lines.append(f"  vs {names[other.group]} ({_num(theirs.value)} {unit}, true max in "
                     f"{_bracket(theirs)}): {ratio}; {verdict}")
    excluded = sum(len(v.excluded) for v in verdicts)
    if excluded:
        steps = sum(len(v.rates_measured) for v in verdicts)
        lines.append(f"  caution: {excluded} of {steps} measured rates were excluded (the load generator "
                     "could not keep its schedule, or the cell failed): those rates could not be judged "
                     "on this machine now; a busy machine narrows what the headline can say")
    lines.append(
        "  how sure: each bracket runs from the highest rate met to the lowest missed within the run "
        f"(95 % intervals on each step's p{percentile:g} that count the correlation between requests; a "
        "step with too "
        "few effective requests is not judged). A line beats another only on pairs: its max rate over the "
        "other's in the same repetition's interleaved rounds, with a 95 % interval over two or more "
        f"repetitions, beyond the A/A figure ({repetitions} repetition(s) here). A bracket that stays "
        "open (∞) was not bounded by this run; see report.html.")
    return lines


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _paired_words(comparison: Any, winner: str, other: str) -> str:
    """The paired max-rate verdict in words (`analysis.paired.PairedComparison`, ratio = winner / other)."""
    if comparison is not None and comparison.ratio is None and comparison.verdict in ("b lower here",
                                                                                     "a lower here"):
        more = winner if comparison.verdict == "b lower here" else other
        return f"{more} sustains more here ({comparison.why})"
    if comparison is None or comparison.ratio is None:
        why = comparison.why if comparison is not None else "no paired repetitions"
        return f"indistinguishable here ({why})"
    interval = ("" if comparison.low is None or comparison.high is None
                else f" [{comparison.low:.2f}, {comparison.high:.2f}]")
    pairs = len(comparison.pairs)
    measured = (f"{comparison.ratio:.2f}x{interval} over {pairs} paired repetition(s)")
    if comparison.verdict == "b lower":
        return f"{winner} surely sustains more: {measured} ({comparison.why})"
    if comparison.verdict == "b lower here":
        return f"more here: {measured} ({comparison.why})"
    if comparison.verdict.startswith("a lower"):
        sure = "surely" if comparison.verdict == "a lower" else "here"
        return (f"the pairs say {other} sustains more ({sure}): {measured} ({comparison.why}); the "
                "brackets' order is not evidence")
    return f"indistinguishable here: {measured} ({comparison.why})"


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
