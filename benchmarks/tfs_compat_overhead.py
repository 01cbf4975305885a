"""Per-request overhead of tfs-compat over the in-process predict of the same SavedModel signature.

For the full-size model (64 x 262,144), batch 1, a few hundred sequential requests per protocol over one
kept-alive connection / channel, with request bodies serialized before timing (client encode time
excluded) and response bodies read but not decoded. The in-process baseline calls the same concrete
signature function with the same inputs. Writes benchmarks/results/tfs_compat_overhead.json.

    python benchmarks/tfs_compat_overhead.py --artifacts /tmp/inferload-full [--requests 300]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from busy import OtherWork  # noqa: E402

from loadtest import encode_body  # noqa: E402
from models.artifacts import ArtifactLayout  # noqa: E402
from models.linear import make_inputs  # noqa: E402

PREDICT_PATH = "/v1/models/linear:predict"
_JSON = "application/json"
GRPC_PREDICT = "/tensorflow.serving.PredictionService/Predict"
POOL = 8  # distinct inputs, cycled


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _summary(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1e3
    return {
        "n": len(ms),
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
    }


Call = Callable[[int], object]


def _time_interleaved(calls: dict[str, Call], n: int, warmup: int) -> dict[str, list[float]]:
    """Round-robin over the methods, so background load on the shared machine hits them all alike."""
    for i in range(warmup):
        for call in calls.values():
            call(i)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(n):
        for name, call in calls.items():
            start = time.perf_counter()
            call(i)
            samples[name].append(time.perf_counter() - start)
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n} rounds", file=sys.stderr, flush=True)
    return samples


def _in_process_calls(layout: ArtifactLayout, x: np.ndarray) -> dict[str, Callable[[int], object]]:
    import tensorflow as tf

    saved = tf.saved_model.load(str(layout.tf_version_dir))
    dense, raw = saved.signatures["serving_default"], saved.signatures["predict_bytes"]
    rows = [x[i : i + 1] for i in range(POOL)]
    blobs = [np.array([x[i].astype("<f4").tobytes()], dtype=object) for i in range(POOL)]
    return {
        "in-process serving_default": lambda i: dense(x=rows[i % POOL])["class_ids"].numpy(),
        "in-process predict_bytes": lambda i: raw(x_bytes=blobs[i % POOL])["class_ids"].numpy(),
    }


def _json_decode_call(bodies: list[bytes]) -> Callable[[int], object]:
    """The server's JSON decode step alone (orjson.loads + np.asarray), to explain the REST-JSON overhead."""
    import orjson

    return lambda i: np.asarray(orjson.loads(bodies[i % POOL])["instances"]).astype(np.float32)


def _start_server(layout: ArtifactLayout, log_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    rest, grpc_port = _free_port(), _free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "serving.tfs_compat", f"--port={grpc_port}", f"--rest_api_port={rest}",
                "--model_name=linear", f"--model_base_path={layout.tf_base_path}",
            ],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tfs-compat exited: see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", rest, timeout=2)
            conn.request("GET", "/v1/models/linear")
            if conn.getresponse().status == 200:
                return process, rest, grpc_port
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"tfs-compat not ready in 300 s: see {log_path}")


def _b64(row: np.ndarray) -> str:
    return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("/tmp/inferload-full"))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/tfs_compat_overhead.json")
    args = parser.parse_args()
    layout = ArtifactLayout(args.artifacts).check()
    spec = layout.spec()
    x = make_inputs(spec.features, POOL, seed=11)
    n, warmup = args.requests, args.warmup

    json_bodies = [json.dumps({"instances": x[i : i + 1].tolist()}).encode() for i in range(POOL)]
    b64_bodies = [
        json.dumps(
            {
                "signature_name": "predict_bytes",
                "instances": [{"b64": base64.b64encode(x[i].astype("<f4").tobytes()).decode()}],
            }
        ).encode()
        for i in range(POOL)
    ]
    grpc_bodies = [encode_body("tfserving", "grpc", x[i : i + 1]) for i in range(POOL)]  # as the generator

    calls = _in_process_calls(layout, x)
    calls["in-process json decode"] = _json_decode_call(json_bodies)
    log_path = Path(tempfile.gettempdir()) / "tfs_compat_overhead.server.log"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    process, rest_port, grpc_port = _start_server(layout, log_path)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=60)

        def rest(bodies: list[bytes]) -> Callable[[int], object]:
            def call(i: int) -> object:
                conn.request("POST", PREDICT_PATH, body=bodies[i % POOL], headers={"Content-Type": _JSON})
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
                return data

            return call

        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=options)
        grpc_call = channel.unary_unary(GRPC_PREDICT)  # bytes in, bytes out: no client encode/decode timed
        calls["rest-json"] = rest(json_bodies)
        calls["rest-b64"] = rest(b64_bodies)
        calls["grpc-tensor_content"] = lambda i: grpc_call(grpc_bodies[i % POOL], timeout=60)
        with OtherWork() as other:
            samples = _time_interleaved(calls, n, warmup)
        channel.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    summaries = {name: _summary(values) for name, values in samples.items()}
    floor_of = {
        "rest-json": "in-process serving_default",
        "rest-b64": "in-process predict_bytes",
        "grpc-tensor_content": "in-process serving_default",
    }
    overhead = {
        name: {
            "median_ms": summaries[name]["median_ms"] - summaries[floor]["median_ms"],
            "p99_ms": summaries[name]["p99_ms"] - summaries[floor]["p99_ms"],
            "compared_with": floor,
        }
        for name, floor in floor_of.items()
    }
    document = {
        "benchmark": "tfs_compat_overhead",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"classes": spec.classes, "features": spec.features, "seed": spec.seed},
        "batch": 1,
        "requests_per_protocol": n,
        "warmup": warmup,
        "body_bytes": {
            "rest-json": len(json_bodies[0]),
            "rest-b64": len(b64_bodies[0]),
            "grpc-tensor_content": len(grpc_bodies[0]),
        },
        "latency": summaries,
        "overhead_over_in_process": overhead,
        "method": (
            "sequential requests, methods interleaved round-robin; one kept-alive http.client connection "
            "and one grpc channel; bodies pre-serialized (JSON with Python's float repr, as json.dumps "
            "writes it); responses read but not decoded"
        ),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "other_work": other.result(),
        },
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({"latency": summaries, "overhead": overhead}, indent=1))
    if other.busy:
        print(f"BUSY MACHINE: {other.busy_reason}: these numbers are inflated, not final", file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
