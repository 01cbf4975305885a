"""The generator at full size (1 MiB per request): its CPU per request and its lateness at the demo's rates.

    python benchmarks/generator_full_size.py --label after [--artifacts artifacts/64x262144-s0]
    python benchmarks/generator_full_size.py --label before --from-dir DIR   # runs made earlier

Runs `benchmarks/generator_cpu.py` (one `inferload load` worker per repetition against tfs-compat,
the real engine and transport) for gRPC and REST-binary: CPU per request at 100 req/s (5 repetitions:
the worker's own CPU time from the common start to the end of its drain, divided by its requests),
then lateness (sent - scheduled) p50/p99 at the demo's rates (experiments/demo.yaml searches 40, 80,
160 and up; 240 is its usual bisection), 2 repetitions each, unpinned, as the demo runs. tfs-compat
serves the full-size model on the same 2 cores, as in the demo. TF Serving's REST-binary is base64
JSON (~1.4 MB); gRPC is a PredictRequest with 1 MiB of tensor_content.

The table goes into benchmarks/results/generator_full_size.json under `--label`, next to the other
labels already there (e.g. `before` and `after` an engine change, each measured in a run of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "generator_full_size.json"
PROTOCOLS = ("grpc", "rest-binary")
CPU_RATE = 100
DEMO_RATES = (40, 80, 160, 240)


def run_all(artifacts: Path, out: Path) -> None:
    """generator_cpu.py for every protocol: CPU at CPU_RATE (5 reps), then each demo rate (2 reps)."""
    out.mkdir(parents=True, exist_ok=True)
    script = str(Path(__file__).with_name("generator_cpu.py"))
    jobs = [(p, CPU_RATE, 5, 1024, f"cpu-{p}-{CPU_RATE}") for p in PROTOCOLS]
    jobs += [(p, r, 2, 64, f"demo-{p}-{r}") for p in PROTOCOLS for r in DEMO_RATES]
    for protocol, rate, reps, in_flight, name in jobs:
        command = [sys.executable, script, "--artifacts", str(artifacts), "--protocol", protocol,
                   "--rate", str(rate), "--duration", "4", "--warmup", "1", "--reps", str(reps),
                   "--max-in-flight", str(in_flight), "--out", str(out / f"{name}.json")]
        with open(out / f"{name}.log", "w") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=REPO_ROOT)
        print(f"  {name} done", flush=True)


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) == r.get(key)]  # NaN: no measured requests
    return round(statistics.median(values), 3) if values else None


def summarize(folder: Path) -> dict[str, Any]:
    """One table from a folder of generator_cpu.py results (cpu-*.json, demo-*.json)."""
    table: dict[str, Any] = {"cpu_us_per_request": {}, "lateness_ms": {}}
    for protocol in PROTOCOLS:
        cpu = json.loads((folder / f"cpu-{protocol}-{CPU_RATE}.json").read_text())
        runs = [r for r in cpu["runs"] if not r["profiled"]]
        values = [r["cpu_us_per_request"] for r in runs]
        table["cpu_us_per_request"][protocol] = {
            "rate": CPU_RATE, "median": round(statistics.median(values)), "min": round(min(values)),
            "max": round(max(values)), "reps": len(values), "requests_per_rep": runs[0]["requests"],
            "server_cpu_us_per_request": round(
                statistics.median(r["server_cpu_us_per_request"] for r in runs)
            ),
        }
        table["lateness_ms"][protocol] = {}
        for rate in DEMO_RATES:
            demo = json.loads((folder / f"demo-{protocol}-{rate}.json").read_text())
            table["lateness_ms"][protocol][str(rate)] = {
                "p50_median": _median(demo["runs"], "lateness_p50_ms"),
                "p99_median": _median(demo["runs"], "lateness_p99_ms"),
                "p99_max": max(r["lateness_p99_ms"] for r in demo["runs"]),
                "dropped": sum(r["dropped"] for r in demo["runs"]),
                "errors": sum(r["errors"] for r in demo["runs"]),
                "cpu_us_per_request_median": _median(demo["runs"], "cpu_us_per_request"),
                "reps": len(demo["runs"]),
                "loadavg": [round(r["loadavg"], 2) for r in demo["runs"]],
            }
    return table


def print_table(label: str, table: dict[str, Any]) -> None:
    print(f"\n{label}: generator CPU per request at {CPU_RATE} req/s, full size (us: median [min-max], reps)")
    for protocol, row in table["cpu_us_per_request"].items():
        print(f"  {protocol:12s} {row['median']:6d} [{row['min']}-{row['max']}] x{row['reps']}"
              f"   (server {row['server_cpu_us_per_request']} us/req)")
    print(f"{label}: lateness p99 (ms, median of reps; max) at the demo's rates, full size, unpinned")
    print(f"  {'':12s}" + "".join(f"{rate:>16}" for rate in DEMO_RATES))
    for protocol, rates in table["lateness_ms"].items():
        cells = "".join(
            f"{rates[str(r)]['p99_median']:>9.3f} ({rates[str(r)]['p99_max']:.2f})" for r in DEMO_RATES
        )
        print(f"  {protocol:12s}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", required=True, help="e.g. before / after: the key of this table")
    parser.add_argument("--artifacts", type=Path, default=REPO_ROOT / "artifacts" / "64x262144-s0")
    parser.add_argument("--from-dir", type=Path, default=None,
                        help="summarize generator_cpu.py results already in this folder instead of running")
    parser.add_argument("--work", type=Path, default=None,
                        help="where the runs' files go (default: a new folder)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="how it was measured (e.g. 'under /work/bin/quiet')")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    folder = args.from_dir
    if folder is None:
        folder = args.work or Path(f"/tmp/generator-full-size-{args.label}-{int(time.time())}")
        run_all(args.artifacts, folder)
    table = summarize(folder)
    results = json.loads(args.out.read_text()) if args.out.exists() else {
        "schema": "inferload.benchmark.generator_full_size", "schema_version": 1,
        "method": __doc__.split("\n\n")[2].replace("\n", " "), "tables": {},
    }
    results["tables"][args.label] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": [round(x, 2) for x in load_before],
        "note": args.note,
        **table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for label, stored in results["tables"].items():
        print_table(label, stored)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
