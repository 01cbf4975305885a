"""`inferload demo`: the main job end to end on the embedded default.

Runs `experiments/smoke.yaml` (export the small model, start both servers locally, one short
Poisson cell per server × protocol) and writes its report: exactly what a user would type as
`inferload run` then `inferload report`, so the demo can never drift from the real commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the smoke matrix end to end (export, serve, load, report)",
        description="Run experiments/smoke.yaml end to end and write its report.",
    )
    parser.add_argument(
        "--experiment",
        type=Path,
        default=REPO_ROOT / "experiments" / "smoke.yaml",
        help="matrix to run (default: experiments/smoke.yaml)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/smoke"), help="results directory")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from inferload.cli import main

    status = main(["run", str(args.experiment), "--out", str(args.out)])
    if status != 0:
        return status
    status = main(["report", str(args.out)])
    if status == 0:
        print(f"\nreport: {(args.out / 'report.html').resolve()}", file=sys.stderr)
    return status
