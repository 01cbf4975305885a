"""Do perf_analyzer_reference.py's agreement intervals hold 95 %? Simulated on queues like ours.

    python benchmarks/agreement_coverage.py [--pairs 400] [--rate 20] [--window 20]

The two tools' runs are two independent windows of the same queue (analysis/queues.py: M/M/1 and M/D/1
at utilisations 0.3, 0.5 and 0.8, Poisson arrivals at `--rate` for `--window` s, the reference's
setting), so the true ratio of their percentiles is 1. For each pair: the p50, p90 and p99 ratio intervals
exactly as the reference computes them (each tool's correlation-aware interval at sqrt(0.95), opposite
ends; an open end holds anything) and the achieved-rate ratio interval (two Poisson counts); coverage
is the share of pairs whose interval holds 1, beside how many pairs gave both ends and the coverage
among those (a closed interval is the one that can claim agreement). Written to
benchmarks/results/agreement_coverage.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from perf_analyzer_reference import (  # noqa: E402
    CONFIDENCE,
    holds_one,
    latency_percentiles,
    latency_ratio,
    rate_ratio,
)

from analysis.queues import Kind, Queue  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results" / "agreement_coverage.json"
KINDS: tuple[Kind, ...] = ("M/M/1", "M/D/1")
UTILISATIONS = (0.3, 0.5, 0.8)


def cell(kind: Kind, utilisation: float, rate: float, window_s: float, pairs: int, seed: int
         ) -> dict[str, Any]:
    queue = Queue.at(kind, rate, utilisation)
    windows = list(queue.windows(window_s, 2 * pairs, seed))
    held: dict[str, list[bool]] = {"p50_ms": [], "p90_ms": [], "p99_ms": [], "achieved_rate": []}
    closed: dict[str, list[bool]] = {"p50_ms": [], "p90_ms": [], "p99_ms": []}
    for ours, theirs in zip(windows[0::2], windows[1::2], strict=True):
        found = []
        for times, latencies in (ours, theirs):
            found.append({**latency_percentiles(latencies * 1e3, times, (0.0, window_s)),
                          "requests": int(latencies.size)})
        for key, name in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
            ratio = latency_ratio(found[1], found[0], name)
            held[key].append(ratio["ratio"] is not None and holds_one(ratio["interval"]))
            if ratio["ratio"] is not None and None not in ratio["interval"]:
                closed[key].append(holds_one(ratio["interval"]))
        counts = rate_ratio(found[1]["requests"], window_s, found[0]["requests"], window_s)
        held["achieved_rate"].append(holds_one(counts["interval"]))
    result: dict[str, Any] = {"queue": kind, "utilisation": utilisation, "rate": rate, "window_s": window_s,
                              "pairs": pairs,
                              "requests_median": float(np.median([w[1].size for w in windows]))}
    for key, values in held.items():
        entry: dict[str, Any] = {"coverage": round(float(np.mean(values)), 4)}
        if key in closed:
            entry["closed"] = len(closed[key])
            entry["coverage_closed"] = round(float(np.mean(closed[key])), 4) if closed[key] else None
        result[key] = entry
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.monotonic()
    cells = [cell(kind, u, args.rate, args.window, args.pairs, seed=index)
             for index, (kind, u) in enumerate((k, u) for k in KINDS for u in UTILISATIONS)]
    document = {
        "benchmark": "agreement_coverage",
        "promised": CONFIDENCE,
        "note": "coverage: share of simulated pairs of independent windows of one queue whose ratio interval "
                "held the true ratio 1 (an open end holds anything); closed: pairs whose interval had both "
                "ends; coverage_closed: the share of those that held 1. Binomial standard error at 95 % "
                f"over {args.pairs} pairs: {100 * (0.95 * 0.05 / args.pairs) ** 0.5:.1f} points.",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.monotonic() - started, 1),
        "cells": cells,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print("| queue | utilisation | requests | p50 coverage (closed: n, coverage) | p90 coverage (closed) "
          "| p99 coverage (closed) | rate coverage |")
    print("|---|---|---|---|---|---|---|")
    for c in cells:
        p50, p90, p99 = c["p50_ms"], c["p90_ms"], c["p99_ms"]
        print(f"| {c['queue']} | {c['utilisation']} | {c['requests_median']:.0f} | {p50['coverage']} "
              f"({p50['closed']}, {p50['coverage_closed']}) | {p90['coverage']} "
              f"({p90['closed']}, {p90['coverage_closed']}) | {p99['coverage']} "
              f"({p99['closed']}, {p99['coverage_closed']}) | {c['achieved_rate']['coverage']} |")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
