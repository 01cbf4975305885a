"""`inferload export`: write the model artifacts (SavedModel for TF Serving, linear.mar for TorchServe)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from inferload.cli import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the linear classifier for TF Serving and TorchServe",
        description="Write DIR/model.json, DIR/tfserving/linear/1/ (SavedModel) and "
        "DIR/torchserve/linear.mar. Skipped when DIR already holds this model, unless --force.",
    )
    parser.add_argument("--classes", type=int, default=64, help="number of classes (default 64)")
    parser.add_argument("--features", type=int, default=262_144, help="input features (default 262144)")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    parser.add_argument(
        "--out", type=Path, default=Path("artifacts"), help="artifacts directory (default ./artifacts)"
    )
    parser.add_argument("--force", action="store_true", help="re-export even if DIR already holds this model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the console
    from models.export import export_all
    from models.linear import LinearSpec

    try:
        spec = LinearSpec(classes=args.classes, features=args.features, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")
    layout = export_all(spec, args.out, force=args.force)
    print(layout.root)
    return 0
