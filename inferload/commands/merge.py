"""`inferload merge`: the record streams of several load workers or hosts, merged into one run.

    inferload merge gen1/records gen2/records --out results/run1

Each source is a directory of `requests.<stream>.jsonl` files (a Locust worker's `--records-dir`,
or an `inferload load --out` made on another host). The streams are copied side by side and
load.json is computed over all of them (which host sent what, workers lost mid-run).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge the record streams of several load workers/hosts into one run (load.json)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sources", nargs="+", type=Path, help="directories holding requests.<k>.jsonl")
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    parser.add_argument("--run-label", default=None, help="run label for load.json (default: the streams')")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inferload.cli import UsageError
    from loadtest import MergeError, SchemaError, merge_runs

    try:
        summary = merge_runs(args.sources, args.out, run=args.run_label)
    except (MergeError, SchemaError) as exc:
        raise UsageError(str(exc)) from None
    for host, entry in summary.hosts.items():
        print(f"{host}: {len(entry['streams'])} stream(s), target {entry['rate']:g}/s, "
              f"{entry['arrivals']} arrivals, {entry['sent']} sent, {entry['ok']} ok")
    rate = f"{summary.target_rate:g}/s" if summary.target_rate else f"concurrency {summary.concurrency}"
    print(f"merged {len(summary.streams)} stream(s) into {args.out}: target {rate}, "
          f"arrivals {summary.achieved_arrival_rate:.1f}/s ({'VALID' if summary.valid else 'INVALID'})")
    for lost in summary.lost_workers:
        print(f"  lost worker: {lost}")
    for reason in summary.invalid_reasons:
        print(f"  invalid: {reason}")
    return 0 if summary.valid else 1
