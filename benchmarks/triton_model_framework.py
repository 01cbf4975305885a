"""NumPy or torch for Triton's Python-backend model: which computes the batch faster here?

    python benchmarks/triton_model_framework.py [--features 262144] [--batches 1,8,64] [--threads 1,2]
        [--seconds 4] [--rounds 2]

models/triton_model.py computes argmax(W x^T) on the batch Triton hands it. Both candidates are timed
exactly as the model would run them (NumPy: `(W @ x.T).T`, argmax; torch: `matmul(x, W.T)`, argmax, in
inference mode), in a fresh interpreter per thread count (OMP/OpenBLAS/MKL threads set before import, as
serving/triton.py sets them for the stub), on the full-size weights, after a check that both give the
NumPy reference's class ids. The frameworks alternate in rounds (A B B A ...), so a drifting machine
shows up as a disagreement between rounds instead of favouring one. Median and p90 per (threads,
batch, framework, round) and the other work on the machine meanwhile (benchmarks/busy.py); written to
benchmarks/results/triton_model_framework.json, or .busy.json when the machine was busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from busy import OtherWork  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

CHILD = r"""
import json, sys, time
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from models.linear import LinearSpec, make_inputs, predict
features, batches, seconds, rounds, threads = (int(sys.argv[2]), [int(b) for b in sys.argv[3].split(",")],
                                               float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
torch.set_num_threads(threads)
weights = LinearSpec(features=features).weights()
weights_t = torch.from_numpy(weights)
def numpy_predict(x):
    return np.argmax((weights @ x.T).T, axis=1)
def torch_predict(x):
    with torch.inference_mode():
        return torch.argmax(torch.matmul(torch.from_numpy(x), weights_t.T), dim=1).numpy()
candidates = {"numpy": numpy_predict, "torch": torch_predict}
rows = []
for batch in batches:
    x = make_inputs(features, batch, seed=3)
    expected = predict(weights, x)
    for name, run in candidates.items():
        assert (run(x) == expected).all(), f"{name} disagrees with the NumPy reference"
    order = ["numpy", "torch"]
    for round_ in range(rounds):
        for name in (order if round_ % 2 == 0 else order[::-1]):
            run = candidates[name]
            for _ in range(3):
                run(x)
            times = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                start = time.perf_counter()
                run(x)
                times.append(time.perf_counter() - start)
            times.sort()
            rows.append({"threads": threads, "batch": batch, "framework": name, "round": round_,
                         "median_ms": round(times[len(times) // 2] * 1e3, 3),
                         "p90_ms": round(times[int(len(times) * 0.9)] * 1e3, 3), "calls": len(times)})
print(json.dumps(rows))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--features", type=int, default=262_144)
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed calls per cell")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with OtherWork() as other:
        for threads in (int(t) for t in args.threads.split(",")):
            env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(REPO_ROOT), str(args.features), args.batches,
                 str(args.seconds), str(args.rounds), str(threads)],
                env=env, capture_output=True, text=True, check=True,
            )
            rows += json.loads(done.stdout.strip().splitlines()[-1])
    faster = {}
    for threads in sorted({r["threads"] for r in rows}):
        for batch in sorted({r["batch"] for r in rows}):
            medians = {name: [r["median_ms"] for r in rows if (r["threads"], r["batch"], r["framework"])
                              == (threads, batch, name)] for name in ("numpy", "torch")}
            # one framework is faster only when every round of it beat every round of the other
            if max(medians["numpy"]) < min(medians["torch"]):
                verdict = "numpy"
            elif max(medians["torch"]) < min(medians["numpy"]):
                verdict = "torch"
            else:
                verdict = "indistinguishable (the rounds overlap)"
            faster[f"threads={threads} batch={batch}"] = verdict
    document = {
        "benchmark": "triton_model_framework",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "other_work": other.result(),
        "settings": {"features": args.features, "classes": 64, "seconds_per_cell": args.seconds,
                     "rounds": args.rounds},
        "faster": faster,
        "rows": rows,
    }
    busy = bool(document["other_work"]["busy"])
    name = "triton_model_framework.busy.json" if busy else "triton_model_framework.json"
    out = args.out or RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    for key, verdict in faster.items():
        print(f"{key}: {verdict}")
    if busy:
        print(f"BUSY MACHINE: {document['other_work']['busy_reason']}: not final")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
