"""`inferload report RESULTS_DIR [--compare BEFORE_DIR [--fail-on-regression]] [--out DIR] [--no-plots]`:
report a results directory; with the gate, exit 1 when a cell's latency distribution, a p99 or a max
rate got worse beyond both runs' noise, and exit 2 (judging nothing) across machines or a drifted
calibration."""

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
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="with --compare: exit 1 when a cell's latency distribution (a rank test over time slices, "
        "Holm-corrected across cells), its p99 or a line's max rate under the SLO got worse beyond the "
        "noise of both runs and beyond the A/A figure (else a 10 %% tolerance); prints those cells. "
        "Exit 2, judging nothing, when the runs come from different machines or the machine's "
        "calibration drifted between them by more than 10 %%",
    )
    parser.add_argument(
        "--no-plots",
        action="store_true",
        help="leave the plots out of report.html (drawing them is most of a report's CPU time; a gate "
        "in CI that reads only the verdicts and summary.json does not need them)",
    )
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from analysis.errors import ResultsError
    from analysis.report import render_report
    from analysis.report_model import build_model
    from inferload.cli import UsageError

    if args.fail_on_regression and args.compare is None:
        raise UsageError("--fail-on-regression needs --compare BEFORE_DIR (the baseline to gate against)")
    print(f"reading {args.results_dir} ...", flush=True)
    try:
        model = build_model(args.results_dir, args.compare, gate=args.fail_on_regression)
        paths = render_report(model, args.out, plots=not args.no_plots)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {paths.html}")
    print(f"wrote {paths.markdown}")
    print(f"wrote {paths.json}")
    print(f"SLO: {model.results.slo.describe()}")
    for line in model.verdict_lines():
        print(f"  {line}")
    excluded = model.results.excluded_runs
    if excluded:
        print(f"  {len(excluded)} run(s) excluded from verdicts (invalid or failed): see the report")
    if model.comparison is None:
        return 0
    for line in model.comparison_lines():
        print(f"  {line}")
    regressions = model.regression_lines()
    if not regressions:
        print(f"no regression beyond the noise against {args.compare}")
        return 0
    print(f"{len(regressions)} regression(s) beyond the noise against {args.compare}:")
    for line in regressions:
        print(f"  worse: {line}")
    return 1 if args.fail_on_regression else 0
