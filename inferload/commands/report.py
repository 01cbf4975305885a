"""`inferload report RESULTS_DIR [--compare BEFORE_DIR] [--out DIR]`: report a results directory."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write report.html, summary.md and summary.json for a results directory",
        description=(
            "Read a results directory written by `inferload run` (or one `inferload load --out` run "
            "directory) and write a self-contained report.html, summary.md and summary.json."
        ),
    )
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="e.g. results/smoke")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="BEFORE_DIR",
        default=None,
        help="another results directory to compare against (the 'before' side; RESULTS_DIR is 'after')",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        default=None,
        help="where to write the report (default: RESULTS_DIR)",
    )
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from analysis.errors import ResultsError
    from analysis.report import build_model, render_report
    from inferload.cli import UsageError

    print(f"reading {args.results_dir} ...", flush=True)
    try:
        model = build_model(args.results_dir, args.compare)
        paths = render_report(model, args.out)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {paths.html}")
    print(f"wrote {paths.markdown}")
    print(f"wrote {paths.json}")
    print(f"SLO: {model.experiment.slo.describe()}")
    for line in model.verdict_lines():
        print(f"  {line}")
    excluded = model.experiment.excluded_runs
    if excluded:
        print(f"  {len(excluded)} run(s) excluded from verdicts (invalid or failed): see the report")
    return 0
