"""The `inferload` command line: one subcommand per stage (export, serve, load, run, report).

Each subcommand lives in `inferload/commands/<name>.py` and exposes
`register(subparsers) -> None`; the parser it adds sets `func(args) -> int`.
Heavy imports (TensorFlow, torch, gevent) happen inside the command functions, so
`inferload --help` stays fast and the load generator never pays for TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("export", "serve", "load", "load-worker", "merge", "run", "aa", "report", "floor", "demo")


class UsageError(Exception):
    """Bad input from the user: printed as `error: ...` with exit status 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferload",
        description="Load-test model servers (TF Serving, TorchServe) over REST-JSON, REST-binary and gRPC.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"inferload.commands.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"inferload {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inferload {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
