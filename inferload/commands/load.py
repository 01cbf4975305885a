"""`inferload load` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("load", help="(not implemented yet)")
    parser.set_defaults(func=lambda args: print("inferload load: not implemented yet") or 1)
