"""`inferload floor`: time in-process predict (NumPy, TensorFlow, torch) per batch size, no server.

The result (floor.json) is the "model compute" slice of the reports' latency decomposition.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inferload.cli import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "floor",
        help="measure the in-process model compute floor (numpy, tensorflow, torch)",
        description="Time predict in-process on the exported model's weights and inputs, per framework and "
        "batch size, and write the medians to a JSON file.",
    )
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="exported artifacts dir")
    parser.add_argument(
        "--batch", type=int, action="append", dest="batches", help="batch size (repeatable; default 1)"
    )
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per framework and batch")
    parser.add_argument(
        "--framework",
        action="append",
        dest="frameworks",
        choices=("numpy", "tensorflow", "torch"),
        help="framework to time (repeatable; default all three)",
    )
    parser.add_argument("--out", type=Path, default=Path("floor.json"), help="JSON file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the console
    from rich.console import Console
    from rich.table import Table

    from models.artifacts import ArtifactLayout, ArtifactsMissingError
    from models.floor import FRAMEWORKS, FloorRecord, measure_floor, write_floor

    batches = args.batches or [1]
    if any(batch < 1 for batch in batches) or args.repeats < 1:
        raise UsageError("--batch and --repeats must be positive integers")
    layout = ArtifactLayout(args.artifacts)
    try:
        layout.check()
        spec = layout.spec()
    except ArtifactsMissingError as exc:
        raise UsageError(str(exc)) from None
    console = Console(stderr=True)

    def show(record: FloorRecord) -> None:
        console.print(f"floor: {record.framework} batch {record.batch}: median {record.median_ms:.3f} ms")

    console.print(f"floor: model {spec.classes} x {spec.features} from {layout.root}")
    records = measure_floor(
        layout, batches, args.repeats, frameworks=args.frameworks or FRAMEWORKS, progress=show
    )
    write_floor(records, args.out, spec=spec)
    table = Table(title=f"In-process predict, {spec.classes} x {spec.features} (ms per call)")
    for column in ("framework", "batch", "median ms", "p90 ms", "calls"):
        table.add_column(column, justify="left" if column == "framework" else "right")
    for record in records:
        table.add_row(
            record.framework,
            str(record.batch),
            f"{record.median_ms:.3f}",
            f"{record.p90_ms:.3f}",
            str(record.n),
        )
    Console().print(table)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
