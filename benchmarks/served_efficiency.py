"""How close the served path gets to the in-process model, per server × protocol, in one table.

    python benchmarks/served_efficiency.py --artifacts /tmp/inferload-full \\
        [--batches 1,32,64] [--config default --config ts8=torchserve_batch_size=8,...] \\
        [--concurrency 4] [--duration 5] [--latency-requests 100]

For every server config given (each a fresh pair of servers), per server and protocol:
- throughput: closed loop (`inferload load --concurrency`) at each batch size; predictions/s served
  = ok requests/s × batch. The best cell over batches and configs is divided by the in-process
  floor at the same batch (models/floor.py: TensorFlow for TF Serving, torch for TorchServe).
- latency: batch 1, sequential over one kept-alive connection, median divided by (floor at batch 1
  + one in-process copy of that protocol's body, min of many `bytearray(body)`), and the server's
  CPU time per request (psutil, its whole process tree) — a figure contention inflates far less
  than wall-clock time.
Other work on the machine is sampled during the whole run (benchmarks/busy.py: CPU taken by processes
outside this benchmark's own process tree; its servers and load processes are inside it). A run with
other work is marked "busy", the table says so, and by default it is written to
served_efficiency.busy.json instead of served_efficiency.json: a busy machine never silently makes the
final numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from busy import OtherWork  # noqa: E402
from single_request_latency import bodies, class_ids, senders  # noqa: E402

from inferload_formats import PROTOCOLS, SERVERS  # noqa: E402
from loadtest import LoadSummary  # noqa: E402
from loadtest._summary import LOAD_FILE  # noqa: E402
from models.artifacts import ArtifactLayout  # noqa: E402
from models.floor import measure_floor  # noqa: E402
from models.linear import make_inputs, predict  # noqa: E402
from serving import Ports, ServerSettings, Stack, up  # noqa: E402
from serving.limits import RequestTooLargeError, check_request_size  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
FRAMEWORK = {"tfserving": "tensorflow", "torchserve": "torch"}


@dataclass(frozen=True)
class ServerConfig:
    """A named set of ServerSettings overrides given on the command line."""

    name: str
    settings: ServerSettings


def parse_config(text: str) -> ServerConfig:
    """`default`, or `NAME=key=value,key=value` with ServerSettings field names (bad keys fail here)."""
    if text == "default":
        return ServerConfig("default", ServerSettings())
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--config {text!r}: write default or NAME=key=value,... (ServerSettings fields)")
    fields: dict[str, Any] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--config {text!r}: {item!r} is not key=value")
        fields[key.strip()] = json.loads(value) if value.strip()[:1] in "0123456789-tf[" else value
    return ServerConfig(name, ServerSettings(**fields))


def copy_ms(body: bytes, repeats: int = 9) -> float:
    """One in-process copy of the body (memcpy into a fresh buffer), min of `repeats` runs of 20."""
    return min(timeit.repeat(lambda: bytearray(body), number=20, repeat=repeats)) / 20 * 1e3


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (TorchServe's workers are children)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        pass
    return total


def latency_cells(stack: Stack, n: int, warmup: int) -> list[dict[str, Any]]:
    """Batch 1, sequential: median/min ms and server CPU ms per request, checked against the reference."""
    spec = stack.artifacts.spec()
    x = make_inputs(spec.features, 1, seed=11)
    reference = predict(spec.weights(), x).tolist()
    payloads = bodies(x)
    sends, closables = senders(stack.ports)
    pids = {server: info.pid for server, info in stack.servers.items()}
    rows = []
    try:
        for (server, protocol), send in sends.items():
            body = payloads[server, protocol]
            got = class_ids(server, protocol, send(body))
            if got != reference:
                raise SystemExit(f"{server} {protocol} answered {got}, reference {reference}")
            for _ in range(warmup):
                send(body)
            cpu_before = tree_cpu_s(pids[server])
            ms = np.empty(n)
            for i in range(n):
                started = time.perf_counter_ns()
                send(body)
                ms[i] = (time.perf_counter_ns() - started) / 1e6
            cpu_ms = (tree_cpu_s(pids[server]) - cpu_before) * 1e3 / n
            rows.append({
                "server": server, "protocol": protocol, "n": n, "body_bytes": len(body),
                "median_ms": round(float(np.median(ms)), 3), "min_ms": round(float(ms.min()), 3),
                "server_cpu_ms_per_request": round(cpu_ms, 3), "copy_ms": round(copy_ms(body), 4),
            })  # fmt: skip
    finally:
        for closable in closables:
            closable.close()  # type: ignore[attr-defined]
    return rows


def throughput_cell(
    stack: Stack, server: str, protocol: str, batch: int, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    """One closed-loop `inferload load` run; predictions/s = ok requests/s × batch; server CPU/request."""
    port = {
        ("tfserving", "grpc"): stack.ports.tfserving_grpc,
        ("torchserve", "grpc"): stack.ports.torchserve_grpc,
        ("torchserve", "rest-json"): stack.ports.torchserve_inference,
        ("torchserve", "rest-binary"): stack.ports.torchserve_inference,
    }.get((server, protocol), stack.ports.tfserving_rest)
    metadata = (
        f"http://127.0.0.1:{stack.ports.tfserving_rest}"
        if server == "tfserving"
        else f"http://127.0.0.1:{stack.ports.torchserve_management}"
    )
    argv = [
        sys.executable, "-m", "inferload", "load", "--server", server, "--protocol", protocol,
        "--concurrency", str(args.concurrency), "--duration", str(args.duration),
        "--warmup", str(args.warmup_s), "--batch", str(batch), "--artifacts", str(args.artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--metadata-url", metadata,
        "--timeout", "120", "--out", str(out), "--quiet",
    ]  # fmt: skip
    limit_s = args.duration * 10 + 300
    pid = stack.servers[server].pid
    cpu_before = tree_cpu_s(pid)
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=limit_s)
    server_cpu_s = tree_cpu_s(pid) - cpu_before
    if done.returncode != 0 or not (out / LOAD_FILE).exists():
        return {"batch": batch, "error": (done.stderr or done.stdout).strip()[-400:]}
    summary = LoadSummary.read(out / LOAD_FILE)  # load.json through its owner
    ok_rate = summary.ok_rate
    answered = summary.counts_total["ok"] + summary.counts_total["error"]
    return {
        "batch": batch,
        "ok_requests_per_s": round(ok_rate, 2),
        "predictions_per_s": round(ok_rate * batch, 1),
        "errors": summary.counts["error"] + summary.counts["timeout"],
        "generator_cpu_percent": round(summary.generator_cpu_percent_total, 1),
        # warm-up included; CPU time is what contention inflates least
        "server_cpu_ms_per_request": round(server_cpu_s * 1e3 / answered, 2) if answered else None,
    }


def run(args: argparse.Namespace, configs: list[ServerConfig]) -> dict[str, Any]:
    with OtherWork() as other:
        result = _run(args, configs)
    result["machine"]["other_work"] = other.result()
    result["status"] = "busy" if other.busy else "quiet"
    return result


def _run(args: argparse.Namespace, configs: list[ServerConfig]) -> dict[str, Any]:
    cpus = len(os.sched_getaffinity(0))
    layout = ArtifactLayout(args.artifacts)
    spec = layout.check().spec()
    print(f"in-process floor for {spec}, batches {args.batches} ...", file=sys.stderr, flush=True)
    floors = measure_floor(
        layout, batches=args.batches, repeats=args.floor_repeats, frameworks=("tensorflow", "torch")
    )
    floor_ms = {(r.framework, r.batch): r.median_ms for r in floors}
    cells: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="served-efficiency-") as scratch:
        for config in configs:
            print(f"config {config.name}: starting both servers ...", file=sys.stderr, flush=True)
            stack = up(
                layout, ports=Ports.free(), settings=config.settings,
                state_dir=Path(scratch) / config.name / "state", timeout_s=args.start_timeout,
            )  # fmt: skip
            try:
                body_1: dict[tuple[str, str], int] = {}
                for row in latency_cells(stack, args.latency_requests, args.warmup_requests):
                    latency.append({"config": config.name, **row})
                    body_1[row["server"], row["protocol"]] = row["body_bytes"]
                for server in SERVERS:
                    for protocol in args.protocols:
                        for batch in args.batches:
                            print(f"  {server} {protocol} batch {batch} ...", file=sys.stderr, flush=True)
                            out = Path(scratch) / config.name / f"{server}-{protocol}-b{batch}"
                            try:  # refused here, with the limit named, rather than by a reset stream
                                check_request_size(server, protocol, body_1[server, protocol] * batch, batch)
                            except RequestTooLargeError as exc:
                                cells.append({"config": config.name, "server": server, "protocol": protocol})
                                cells[-1].update(batch=batch, error=str(exc))
                                continue
                            cell = throughput_cell(stack, server, protocol, batch, args, out)
                            cells.append({"config": config.name, "server": server, "protocol": protocol})
                            cells[-1].update(cell)
            finally:
                stack.down()
    return {
        "benchmark": "served_efficiency",
        "model": spec.to_dict(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": cpus},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {
            "batches": args.batches, "concurrency": args.concurrency, "duration_s": args.duration,
            "latency_requests": args.latency_requests, "configs": [c.name for c in configs],
        },  # fmt: skip
        "floor_ms": [
            {"framework": r.framework, "batch": r.batch, "median_ms": r.median_ms, "n": r.n} for r in floors
        ],
        "latency": latency,
        "throughput": cells,
        "summary": summarize(floor_ms, latency, cells),
    }


def summarize(
    floor_ms: dict[tuple[str, int], float], latency: list[dict[str, Any]], cells: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per server × protocol: best served / floor throughput, best batch-1 latency / (floor+copy)."""
    rows = []
    for server in SERVERS:
        framework = FRAMEWORK[server]
        for protocol in PROTOCOLS:
            mine = [c for c in cells if c["server"] == server and c["protocol"] == protocol]
            served = [c for c in mine if "error" not in c]
            lat = [r for r in latency if r["server"] == server and r["protocol"] == protocol]
            if not served and not lat:
                continue
            row: dict[str, Any] = {"server": server, "protocol": protocol}
            if served:
                best = max(served, key=lambda c: c["predictions_per_s"])
                floor_rate = best["batch"] / (floor_ms[framework, best["batch"]] / 1e3)
                row.update(
                    best_config=best["config"], best_batch=best["batch"],
                    served_predictions_per_s=best["predictions_per_s"],
                    floor_predictions_per_s=round(floor_rate, 1),
                    throughput_ratio=round(best["predictions_per_s"] / floor_rate, 3),
                )  # fmt: skip
            if lat:
                fastest = min(lat, key=lambda r: r["median_ms"])
                bound = floor_ms[framework, 1] + fastest["copy_ms"]
                row.update(
                    latency_config=fastest["config"], median_ms=fastest["median_ms"],
                    floor_plus_copy_ms=round(bound, 3), latency_ratio=round(fastest["median_ms"] / bound, 2),
                    server_cpu_ms_per_request=fastest["server_cpu_ms_per_request"],
                )  # fmt: skip
            rows.append(row)
    return rows


def print_table(result: dict[str, Any]) -> None:
    other = result["machine"]["other_work"]
    if result["status"] == "busy":
        print(f"BUSY MACHINE: {other['busy_reason']}: these numbers are inflated by other work, not final")
    print(f"model {result['model']}, other work {other['other_cpu_percent_mean']} % of one core (mean)")
    print(
        f"{'server':<11} {'protocol':<12} {'best pred/s':>11} {'floor pred/s':>12} {'ratio':>6} {'batch':>5}"
        f" {'b1 med ms':>9} {'floor+copy':>10} {'ratio':>6} {'srv cpu ms':>10}"
    )
    for row in result["summary"]:
        print(
            f"{row['server']:<11} {row['protocol']:<12} {row.get('served_predictions_per_s', 0):>11,.1f} "
            f"{row.get('floor_predictions_per_s', 0):>12,.1f} {row.get('throughput_ratio', 0):>6.2f} "
            f"{row.get('best_batch', 0):>5} {row.get('median_ms', 0):>9.2f} "
            f"{row.get('floor_plus_copy_ms', 0):>10.2f} "
            f"{row.get('latency_ratio', 0):>6.2f} {row.get('server_cpu_ms_per_request', 0):>10.2f}"
        )


def _batches(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return values if 1 in values else [1, *values]


def _protocols(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(values) - set(PROTOCOLS))
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"protocols {unknown or text!r}: choose from {', '.join(PROTOCOLS)}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="written by `inferload export`")
    parser.add_argument("--batches", type=_batches, default=[1, 32, 64], help="comma-separated; 1 is added")
    parser.add_argument("--protocols", type=_protocols, default=list(PROTOCOLS))
    parser.add_argument(
        "--config", action="append", default=None,
        help="server config: default, or NAME=key=value,... with ServerSettings fields (repeatable)",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=4, help="closed-loop requests in flight")
    parser.add_argument("--duration", type=float, default=5.0, help="measuring window per cell, seconds")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="load before each window, seconds")
    parser.add_argument("--latency-requests", type=int, default=100, help="sequential batch-1 requests")
    parser.add_argument("--warmup-requests", type=int, default=10)
    parser.add_argument("--floor-repeats", type=int, default=30)
    parser.add_argument("--start-timeout", type=float, default=300.0, help="server start-up, seconds")
    parser.add_argument("--out", type=Path, default=None, help="default: served_efficiency[.busy].json")
    args = parser.parse_args(argv)
    try:
        configs = [parse_config(text) for text in (args.config or ["default"])]
        ArtifactLayout(args.artifacts).check()
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    if len({c.name for c in configs}) != len(configs):
        parser.error("--config names must be distinct")
    if args.concurrency < 1 or args.latency_requests < 1 or args.duration <= 0:
        parser.error("--concurrency and --latency-requests must be >= 1, --duration > 0")
    result = run(args, configs)
    out = args.out or RESULTS / (
        "served_efficiency.busy.json" if result["status"] == "busy" else "served_efficiency.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
