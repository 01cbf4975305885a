"""An independent reference: perf_analyzer beside `inferload load`, same local server, same Poisson rate.

    python benchmarks/perf_analyzer_reference.py --artifacts DIR [--rate 30] [--duration 15] [--runs 2]
        [--pairs triton:grpc,triton:rest-binary,triton:rest-json,tfserving:grpc,torchserve:rest-binary]

perf_analyzer (the tritonclient 2.41.0 wheel's binary, unpacked by `make setup` into .venv/tools/)
speaks Triton over HTTP and gRPC, TF Serving over gRPC only and TorchServe over HTTP only. For every
pair it can speak, one server is started (its own run), and both tools send Poisson arrivals at the
same rate to it, in alternating order over `--runs` runs (A B, B A, ...: a drifting machine then
shows as run-to-run spread instead of favouring one tool):
- inferload: `loadtest.run_load` (open loop, latency from each request's *scheduled* time; its
  service time, from the actual send, is perf_analyzer's definition) over `--duration` s after a
  warm-up, percentiles by loadtest's one method (nearest rank) over the window's ok requests;
- perf_analyzer: `--request-rate-range R:R:1 --request-distribution poisson`, three measurement windows
  of `--duration`/3 s (its stability rule relaxed, `-s 999`: at 10 % on p99 it rarely held within its
  trials here, and a fixed measured span is what inferload's window is), its own p50/p99 and
  throughput from its CSV (latency from the send), the requests behind them counted from its profile
  export.
What each tool sends for the "same" protocol differs where perf_analyzer has its own encoding: for
TF Serving it builds its own PredictRequest, for TorchServe it uploads a file as multipart form data
(inferload: a raw octet-stream body); the results file says so per pair. Written to
benchmarks/results/perf_analyzer_reference.json with the other work on the machine during the run
(benchmarks/busy.py, the one busyness rule): a busy run goes to perf_analyzer_reference.busy.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from busy import OtherWork  # noqa: E402

from loadtest import LoadSettings, read_run, run_load  # noqa: E402
from loadtest._percentiles import percentile  # noqa: E402
from models.artifacts import ArtifactLayout  # noqa: E402
from serving import Ports, ServerSettings, Stack, up  # noqa: E402
from serving.triton_install import perf_analyzer_binary, perf_analyzer_env  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
DEFAULT_PAIRS = "triton:grpc,triton:rest-binary,triton:rest-json,tfserving:grpc,torchserve:rest-binary"
# What perf_analyzer sends for each pair, against inferload's body (loadtest/_payloads.py, _oip.py).
ENCODINGS = {
    ("triton", "grpc"): "both: ModelInferRequest with raw_input_contents",
    ("triton", "rest-binary"): "both: the binary tensor extension (JSON header + raw float32)",
    ("triton", "rest-json"): "both: V2 JSON with FP32 data (perf_analyzer: --input-tensor-format json)",
    ("tfserving", "grpc"): "inferload: PredictRequest with tensor_content; perf_analyzer: its own "
    "PredictRequest",
    ("torchserve", "rest-binary"): "inferload: raw float32 application/octet-stream body; perf_analyzer: "
    "the same bytes uploaded as a multipart/form-data file (its only TorchServe input form)",
}


def _port(ports: Ports, server: str, protocol: str) -> int:
    return int({
        ("triton", "grpc"): ports.triton_grpc, ("triton", "rest-binary"): ports.triton_http,
        ("triton", "rest-json"): ports.triton_http, ("tfserving", "grpc"): ports.tfserving_grpc,
        ("torchserve", "rest-binary"): ports.torchserve_inference,
    }[(server, protocol)])


def _ms(values: np.ndarray, q: float) -> float | None:
    found = percentile(values.tolist(), q)
    return None if found is None else round(float(found), 3)


def inferload_run(stack: Stack, server: str, protocol: str, features: int, args: argparse.Namespace,
                  run: int, out: Path) -> dict[str, Any]:
    settings = LoadSettings(
        server=server, protocol=protocol, port=_port(stack.ports, server, protocol), features=features,
        rate=args.rate, duration_s=args.duration, warmup_s=args.warmup, seed=run, payload_seed=1 + run,
        lateness_p99_limit_ms=25.0, server_kind=stack.kind_of(server), max_in_flight=256,
    )
    summary = run_load(settings, out, progress=False)
    data = read_run(out)
    records = data.records
    window = records[records["in_window"]]
    ok = window[window["status"] == "ok"]
    start, end = data.window
    window_s = (end - start) / 1e9
    return {
        "tool": "inferload", "run": run, "requests": int(len(ok)), "errors": int(len(window) - len(ok)),
        "window_s": round(window_s, 2), "achieved_rate": round(len(ok) / window_s, 2),
        "p50_ms": _ms(ok["service_ms"].to_numpy(), 50.0), "p99_ms": _ms(ok["service_ms"].to_numpy(), 99.0),
        "latency_from_schedule_p50_ms": _ms(ok["latency_ms"].to_numpy(), 50.0),
        "latency_from_schedule_p99_ms": _ms(ok["latency_ms"].to_numpy(), 99.0),
        "lateness_p99_ms": _ms(window["lateness_ms"].to_numpy(), 99.0),
        "generator_valid": bool(summary.valid),
    }


def perf_analyzer_args(server: str, protocol: str, port: int, scratch: Path, features: int) -> list[str]:
    """perf_analyzer's arguments for one pair (its --service-kind, protocol and input form)."""
    url = f"127.0.0.1:{port}"
    if server == "triton":
        args = ["--service-kind", "triton", "-i", "grpc" if protocol == "grpc" else "http", "-u", url]
        if protocol == "rest-json":
            args += ["--input-tensor-format", "json", "--output-tensor-format", "json"]
        return args
    if server == "tfserving":
        return ["--service-kind", "tfserving", "-i", "grpc", "-u", url]
    raw = scratch / "instance.bin"  # one instance, raw little-endian float32, as inferload's binary body
    np.random.default_rng(1).standard_normal(features, dtype=np.float32).astype("<f4").tofile(raw)
    data = scratch / "torchserve-input.json"
    data.write_text(json.dumps({"data": [{"TORCHSERVE_INPUT": [str(raw)]}]}))
    return ["--service-kind", "torchserve", "-i", "http", "-u", url, "--input-data", str(data)]


def perf_analyzer_run(stack: Stack, server: str, protocol: str, features: int, args: argparse.Namespace,
                      run: int, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, export = out / "perf_analyzer.csv", out / "profile_export.json"
    window_ms = int(args.duration * 1000 / 3)
    command = [
        str(perf_analyzer_binary()), "-m", "linear", "-b", "1",
        *perf_analyzer_args(server, protocol, _port(stack.ports, server, protocol), out, features),
        "--request-rate-range", f"{args.rate}:{args.rate}:1", "--request-distribution", "poisson",
        "--measurement-mode", "time_windows", "-p", str(window_ms), "--max-trials", "10",
        "--stability-percentage", "999", "--percentile", "99", "--max-threads", "16", "-f", str(csv_path),
        "--profile-export-file", str(export),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=perf_analyzer_env(), timeout=600)
    (out / "perf_analyzer.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        return {"tool": "perf_analyzer", "run": run, "error": (done.stdout + done.stderr)[-800:]}
    with open(csv_path, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    requests, span_s = counted_requests(json.loads(export.read_text()))
    return {
        "tool": "perf_analyzer", "run": run, "requests": requests,
        "window_s": round(3 * window_ms / 1000, 2),
        "achieved_rate": round(float(row["Inferences/Second"]), 2),
        # the same figure recounted from its profile export: its responses in the windows / their span
        "export_window_s": None if span_s is None else round(span_s, 3),
        "export_rate": None if not span_s or requests is None else round(requests / span_s, 2),
        "p50_ms": round(float(row["p50 latency"]) / 1000, 3),
        "p99_ms": round(float(row["p99 latency"]) / 1000, 3),
        "command": " ".join(command[1:]),
    }


def counted_requests(export: dict[str, Any]) -> tuple[int | None, float | None]:
    """Requests with a response inside the last three measurement windows (what its figures cover),
    and those windows' span in seconds (its export's timestamps are nanoseconds)."""
    experiments = export.get("experiments") or []
    if not experiments:
        return None, None
    last = experiments[-1]
    bounds = last.get("window_boundaries") or []
    if len(bounds) < 4:
        return None, None
    start, end = bounds[-4], bounds[-1]
    count = sum(1 for r in last.get("requests", [])
                if r.get("response_timestamps") and start <= r["response_timestamps"][-1] <= end)
    return count, (end - start) / 1e9


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per tool: medians over runs, the run-to-run range; and how far perf_analyzer is from inferload."""
    tools: dict[str, Any] = {}
    for tool in ("inferload", "perf_analyzer"):
        mine = [r for r in rows if r["tool"] == tool and "error" not in r]
        if not mine:
            tools[tool] = {"runs": 0}
            continue
        tools[tool] = {"runs": len(mine), "requests": [r["requests"] for r in mine]}
        for key in ("p50_ms", "p99_ms", "achieved_rate", "export_rate"):
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                tools[tool][key] = {"median": float(np.median(values)), "range": [min(values), max(values)]}
    agreement: dict[str, Any] = {}
    if tools["inferload"].get("runs") and tools["perf_analyzer"].get("runs"):
        for key in ("p50_ms", "p99_ms", "achieved_rate"):
            ours, theirs = tools["inferload"][key], tools["perf_analyzer"][key]
            overlap = ours["range"][0] <= theirs["range"][1] and theirs["range"][0] <= ours["range"][1]
            ratio = round(theirs["median"] / ours["median"], 3) if ours["median"] else None
            agreement[key] = {"perf_analyzer_over_inferload": ratio, "ranges_overlap": overlap}
    return {"tools": tools, "agreement": agreement}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=30.0, help="Poisson arrivals per second, both tools")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="inferload's window; perf_analyzer: 3 windows of a third of it")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=2, help="runs per tool, alternating which goes first")
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="server:protocol, comma-separated")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not perf_analyzer_binary().is_file():
        raise SystemExit(f"no perf_analyzer at {perf_analyzer_binary()}: run `make setup`")
    layout = ArtifactLayout(args.artifacts)
    features = layout.check().spec().features
    pairs = [tuple(item.split(":")) for item in args.pairs.split(",") if item]
    cpus = len(os.sched_getaffinity(0))
    results = []
    with OtherWork() as other, tempfile.TemporaryDirectory(prefix="perf-analyzer-reference-") as scratch:
        for server in dict.fromkeys(server for server, _ in pairs):
            print(f"starting {server} ...", file=sys.stderr, flush=True)
            stack = up(layout, servers=[server], settings=ServerSettings(), ports=Ports.free(),
                       state_dir=Path(scratch) / server / "state", timeout_s=300)
            try:
                for pair_server, protocol in pairs:
                    if pair_server != server:
                        continue
                    rows = []
                    for run in range(args.runs):
                        order = ("inferload", "perf_analyzer")
                        if run % 2 == 1:
                            order = order[::-1]
                        for tool in order:
                            out = Path(scratch) / server / protocol / f"{tool}-{run}"
                            print(f"  {server} {protocol} run {run}: {tool} ...", file=sys.stderr, flush=True)
                            measure = inferload_run if tool == "inferload" else perf_analyzer_run
                            rows.append({**measure(stack, server, protocol, features, args, run, out),
                                         "position": order.index(tool)})
                    results.append({"server": server, "protocol": protocol,
                                    "server_kind": stack.kind_of(server),
                                    "encoding": ENCODINGS[(server, protocol)], "rows": rows,
                                    **summarize(rows)})
            finally:
                stack.down()
    busy = bool(other.result()["busy"])
    document = {
        "benchmark": "perf_analyzer_reference",
        "status": "busy" if busy else "quiet",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": cpus, "platform": platform.platform(), "python": platform.python_version()},
        "other_work": other.result(),
        "model": layout.spec().to_dict(),
        "settings": {"rate": args.rate, "duration_s": args.duration, "warmup_s": args.warmup,
                     "runs": args.runs,
                     "perf_analyzer": "tritonclient 2.41.0 (manylinux wheel)",
                     "latency": "both tools' p50/p99 are from the request's send to its response (inferload: "
                                "service time); inferload's latency from the schedule is given beside it"},
        "pairs": results,
    }
    name = "perf_analyzer_reference.busy.json" if busy else "perf_analyzer_reference.json"
    path = args.out or RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    for pair in results:
        tools = pair["tools"]
        text = ", ".join(
            f"{tool}: p50 {tools[tool]['p50_ms']['median']:.2f} p99 {tools[tool]['p99_ms']['median']:.2f} ms "
            f"@ {tools[tool]['achieved_rate']['median']:.1f}/s"
            + (f" (export: {tools[tool]['export_rate']['median']:.1f}/s)"
               if "export_rate" in tools[tool] else "")
            for tool in tools if tools[tool].get("runs"))
        print(f"{pair['server']} {pair['protocol']}: {text}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
