"""Single-request latency per server × protocol: N sequential batch-1 requests with pre-serialized bodies.

    python benchmarks/single_request_latency.py --artifacts /tmp/inferload-full [-n 300]

Starts both servers on free loopback ports, checks each combination's first answer against the NumPy
reference, then times N requests (after a short warm-up) over one kept-alive connection or channel per
combination. Writes median and p99 per combination to benchmarks/results/single_request_latency.json
and prints a table. Sequential requests measure the floor of each path, not throughput.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import orjson
import requests
from busy import OtherWork

from inferload_protos import load
from models.artifacts import ArtifactLayout
from models.linear import make_inputs, predict
from serving import Ports, ServerSettings, Stack, up

RESULTS = Path(__file__).resolve().parent / "results" / "single_request_latency.json"
TF_PREDICT = "/tensorflow.serving.PredictionService/Predict"
TS_PREDICT = "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions"
Send = Callable[[bytes], bytes]


def bodies(x: np.ndarray) -> dict[tuple[str, str], bytes]:
    """One pre-serialized body per server × protocol for the batch `x`."""
    tfs = load("tfserving_predict_pb2")
    ts = load("inference_pb2")
    raw = x.astype("<f4").tobytes()
    tf_request = tfs.PredictRequest()
    tf_request.model_spec.name = "linear"
    tf_request.model_spec.signature_name = "serving_default"
    tensor = tf_request.inputs["x"]
    tensor.dtype = tfs.DT_FLOAT
    tensor.tensor_shape.dim.add(size=x.shape[0])
    tensor.tensor_shape.dim.add(size=x.shape[1])
    tensor.tensor_content = raw
    b64 = [{"b64": base64.b64encode(row.astype("<f4").tobytes()).decode()} for row in x]
    return {
        ("tfserving", "rest-json"): orjson.dumps({"instances": x.tolist()}),
        ("tfserving", "rest-binary"): orjson.dumps({"signature_name": "predict_bytes", "instances": b64}),
        ("tfserving", "grpc"): tf_request.SerializeToString(),
        ("torchserve", "rest-json"): orjson.dumps({"instances": x.tolist()}),
        ("torchserve", "rest-binary"): raw,
        ("torchserve", "grpc"): ts.PredictionsRequest(
            model_name="linear", input={"data": raw}
        ).SerializeToString(),
    }


def senders(ports: Ports) -> tuple[dict[tuple[str, str], Send], list[object]]:
    """A send function per combination, each with its own kept-alive connection; plus things to close."""
    tf_session, ts_session = requests.Session(), requests.Session()
    tf_channel = grpc.insecure_channel(f"127.0.0.1:{ports.tfserving_grpc}", options=_grpc_options())
    ts_channel = grpc.insecure_channel(f"127.0.0.1:{ports.torchserve_grpc}", options=_grpc_options())
    tf_url = f"http://127.0.0.1:{ports.tfserving_rest}/v1/models/linear:predict"
    ts_url = f"http://127.0.0.1:{ports.torchserve_inference}/predictions/linear"

    def post(session: requests.Session, url: str, content_type: str) -> Send:
        def send(body: bytes) -> bytes:
            response = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=120)
            response.raise_for_status()
            return response.content

        return send

    tf_grpc = tf_channel.unary_unary(TF_PREDICT)
    ts_grpc = ts_channel.unary_unary(TS_PREDICT)
    sends: dict[tuple[str, str], Send] = {
        ("tfserving", "rest-json"): post(tf_session, tf_url, "application/json"),
        ("tfserving", "rest-binary"): post(tf_session, tf_url, "application/json"),
        ("tfserving", "grpc"): lambda body: tf_grpc(body, timeout=120),
        ("torchserve", "rest-json"): post(ts_session, ts_url, "application/json"),
        ("torchserve", "rest-binary"): post(ts_session, ts_url, "application/octet-stream"),
        ("torchserve", "grpc"): lambda body: ts_grpc(body, timeout=120),
    }
    return sends, [tf_session, ts_session, tf_channel, ts_channel]


def class_ids(server: str, protocol: str, answer: bytes) -> list[int]:
    """Decode an answer's class ids (only for the correctness check, outside the timed loop)."""
    if server == "tfserving" and protocol == "grpc":
        response = load("tfserving_predict_pb2").PredictResponse.FromString(answer)
        ids = response.outputs["class_ids"]
        return (
            np.frombuffer(ids.tensor_content, "<i8") if ids.tensor_content else np.array(ids.int64_val)
        ).tolist()
    if server == "tfserving":
        return [int(row["class_ids"]) for row in orjson.loads(answer)["predictions"]]
    if protocol == "grpc":
        answer = load("inference_pb2").PredictionResponse.FromString(answer).prediction
    return [int(i) for i in orjson.loads(answer)["class_ids"]]


def measure(send: Send, body: bytes, n: int, warmup: int) -> np.ndarray:
    """Latencies in ms of n sequential requests, after `warmup` untimed ones."""
    for _ in range(warmup):
        send(body)
    latencies = np.empty(n)
    for i in range(n):
        started = time.perf_counter_ns()
        send(body)
        latencies[i] = (time.perf_counter_ns() - started) / 1e6
    return latencies


def run(artifacts: ArtifactLayout, n: int, warmup: int, state_dir: Path, timeout_s: float) -> dict:
    spec = artifacts.spec()
    x = make_inputs(spec.features, 1, seed=11)
    reference = predict(spec.weights(), x).tolist()
    payloads = bodies(x)
    print(f"starting both servers for {spec} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    stack: Stack = up(
        artifacts, ports=Ports.free(), settings=ServerSettings(), state_dir=state_dir, timeout_s=timeout_s,
        progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
    )  # fmt: skip
    startup_s = time.perf_counter() - started
    kind = stack.tfserving_kind
    rows = []
    try:
        with OtherWork() as other:
            sends, closables = senders(stack.ports)
            for (server, protocol), send in sends.items():
                body = payloads[server, protocol]
                got = class_ids(server, protocol, send(body))
                if got != reference:
                    raise SystemExit(f"{server} {protocol} answered {got}, reference {reference}")
                print(f"  {server} {protocol}: {n} requests ...", file=sys.stderr, flush=True)
                ms = measure(send, body, n, warmup)
                rows.append(
                    {
                        "server": server,
                        "protocol": protocol,
                        "n": n,
                        "request_bytes": len(body),
                        "median_ms": round(float(np.median(ms)), 3),
                        "p99_ms": round(float(np.percentile(ms, 99)), 3),
                        "mean_ms": round(float(ms.mean()), 3),
                        "min_ms": round(float(ms.min()), 3),
                        "max_ms": round(float(ms.max()), 3),
                    }
                )
            for closable in closables:
                closable.close()  # type: ignore[attr-defined]
    finally:
        stack.down()
    return {
        "benchmark": "single_request_latency",
        "model": spec.to_dict(),
        "tfserving_kind": kind,
        "batch": 1,
        "warmup": warmup,
        "server_startup_s": round(startup_s, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()},
        # The machine may be shared: other work during the timed requests inflates the numbers.
        "other_work": other.result(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": rows,
    }


def print_table(result: dict) -> None:
    n = result["results"][0]["n"]
    if result["other_work"]["busy"]:
        print(f"BUSY MACHINE: {result['other_work']['busy_reason']}: these numbers are inflated, not final")
    print(f"model {result['model']}, TF Serving kind: {result['tfserving_kind']}, batch 1, n={n}")
    print(f"{'server':<11} {'protocol':<12} {'body bytes':>11} {'median ms':>10} {'p99 ms':>9}")
    for row in result["results"]:
        print(
            f"{row['server']:<11} {row['protocol']:<12} {row['request_bytes']:>11,} "
            f"{row['median_ms']:>10.2f} {row['p99_ms']:>9.2f}"
        )


def _grpc_options() -> list[tuple[str, int]]:
    return [("grpc.max_send_message_length", 512 << 20), ("grpc.max_receive_message_length", 512 << 20)]


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--artifacts", type=Path, required=True, help="directory written by `inferload export`"
    )
    parser.add_argument("-n", type=int, default=300, help="timed requests per server × protocol")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--state-dir", type=Path, default=Path("logs/bench-single-request"))
    parser.add_argument("--timeout", type=float, default=300.0, help="server start-up timeout, seconds")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("-n must be at least 1")
    layout = ArtifactLayout(args.artifacts)
    try:
        layout.check()
    except FileNotFoundError as exc:
        parser.error(str(exc))
    result = run(layout, args.n, args.warmup, args.state_dir, args.timeout)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
