"""`inferload load-worker`: send a share of an `inferload load --workers N` run from this host.

    inferload load-worker --connect 10.0.0.5:5600 --secret-file run.secret --out /tmp/share [--processes 2]

The coordinator (`inferload load ... --workers N --listen 10.0.0.5:5600`) gives this host its share
of the rate and its stream numbers, and starts all hosts together; the records are written here and
forwarded to the coordinator's run directory as they are flushed (loadtest/_cluster.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load-worker",
        help="join an `inferload load --workers N` run from this host",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--connect", required=True, metavar="HOST:PORT", help="the coordinator's --listen")
    parser.add_argument("--out", type=Path, required=True, help="empty directory for this host's records")
    parser.add_argument("--processes", type=int, default=1, help="load processes on this host")
    parser.add_argument("--cpus", default="all", metavar="LIST", help="pin this host's load processes")
    parser.add_argument("--secret-file", metavar="PATH",
                        help="a copy of the secret file the coordinator printed (default: "
                             "INFERLOAD_CLUSTER_SECRET)")
    parser.add_argument(
        "--connect-timeout", type=float, default=60.0, metavar="S", help="wait this long for the coordinator"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inferload.cli import UsageError
    from inferload.cpus import load_cpus
    from loadtest import LoadError, TargetError
    from loadtest._cluster import WorkerError, serve_as_worker
    from serving.cpusets import CpuSetError

    if args.processes < 1:
        raise UsageError("--processes must be >= 1")
    try:
        cpus = load_cpus(args.cpus)
        summary = serve_as_worker(args.connect, args.out, processes=args.processes, cpus=cpus,
                                  connect_timeout_s=args.connect_timeout, secret_file=args.secret_file)
    except (WorkerError, CpuSetError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except (TargetError, LoadError) as exc:
        print(f"inferload load-worker: error: {exc}")
        return 1
    except OSError as exc:  # the coordinator went away mid-run; this host's records stay in --out
        print(f"inferload load-worker: lost the coordinator at {args.connect} ({exc}); records in {args.out}")
        return 1
    print(f"sent {summary.counts_total['ok'] + summary.counts_total['error']} requests "
          f"({summary.counts_total['ok']} ok); records forwarded to {args.connect}")
    return 0
