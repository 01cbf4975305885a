"""The calibration probe: this machine's speed at running the model, measured in-process.

`python -m models.probe --artifacts DIR --out calibration.jsonl --batch 1 [--batch 64] [--cpus 0,1]`
starts one long-lived process (torch, one intra-op thread, pinned where asked) that the runner
drives over stdin/stdout, one JSON object per line:
- `{"calibrate": "before round 0"}`: time the model's predict at every batch (up to `repeats` calls
  within `budget_s`) and a large array copy (memory bandwidth); appends a `CalibrationPoint` and
  answers it. A probe that was on pauses meanwhile.
- `{"probe": true}` / `{"probe": false}`: start / stop the low-duty probe: a burst of 3 timed predicts
  at the smallest batch every `probe_interval_s`, each burst's median appended as a `ProbeSample` (at
  3 ms a call every 0.5 s that is under 2 % of one core).
- `{"quit": true}` or end of input: stop.
Every answer is `{"ok": ...}` or `{"error": "..."}`. The file format is `models/calibration.py`'s.

`python -m models.probe --artifacts DIR --watch 240 --every 4 --out drift.jsonl` instead takes a
calibration every `every` seconds for `watch` seconds and prints how far the machine moved (the
measurement of issue 16: the same torch predict timed every 4 s for 4 minutes on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.calibration import (
    CalibrationPoint,
    CalibrationWriter,
    PredictTiming,
    ProbeSample,
    new_header,
    read_calibration,
    timing_of,
)
from models.linear import LinearSpec, make_inputs, predict

__all__ = ["Probe", "memory_bandwidth_gb_s", "main"]

BANDWIDTH_BYTES = 64 * 1024 * 1024  # the full-size model's weights: what one predict streams from memory
BANDWIDTH_COPIES = 5
PROBE_BURST = 3  # calls per probe sample: their median, so one preempted call does not count
PredictFn = Callable[[np.ndarray], Any]


def memory_bandwidth_gb_s(nbytes: int = BANDWIDTH_BYTES, copies: int = BANDWIDTH_COPIES) -> float:
    """(bytes read + bytes written) / the median time of copying an `nbytes` array: a STREAM-copy figure."""
    source = np.ones(nbytes // 8, dtype=np.float64)
    target = np.empty_like(source)
    np.copyto(target, source)  # first touch of the pages is not a copy
    times = []
    for _ in range(copies):
        started = time.perf_counter_ns()
        np.copyto(target, source)
        times.append(time.perf_counter_ns() - started)
    return 2 * source.nbytes / (sorted(times)[len(times) // 2] / 1e9) / 1e9


def torch_predictor(weights: np.ndarray, threads: int) -> PredictFn:
    """What the TorchServe handler computes (argmax of x @ Wᵀ), on `threads` intra-op threads."""
    import torch

    if threads > 0:  # 0: torch's default (one per core)
        torch.set_num_threads(threads)
    weights_t = torch.from_numpy(weights).T

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return torch.argmax(torch.matmul(torch.from_numpy(x), weights_t), dim=1).numpy()

    return run


class Probe:
    """The model's predict, timed on demand (calibrations) and now and then (the low-duty probe)."""

    def __init__(self, fn: PredictFn, inputs: dict[int, np.ndarray], writer: CalibrationWriter, *,
                 interval_s: float, repeats: int = 30, budget_s: float = 2.0) -> None:
        self.fn = fn
        self.inputs = inputs
        self.writer = writer
        self.interval_s = interval_s
        self.repeats = repeats
        self.budget_s = budget_s
        self._lock = threading.Lock()  # one timed call at a time: a calibration pauses the probe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _timed(self, batch: int) -> float:
        x = self.inputs[batch]
        started = time.perf_counter_ns()
        self.fn(x)
        return (time.perf_counter_ns() - started) / 1e6

    def calibrate(self, label: str) -> CalibrationPoint:
        """Predict at every batch (at least 3 calls each, at most `repeats`, within the budget split
        over the batches), then the memory bandwidth."""
        with self._lock:
            t_ns = time.monotonic_ns()
            started = time.perf_counter()
            per_batch_s = self.budget_s / max(1, len(self.inputs))
            timings: list[PredictTiming] = []
            for batch in sorted(self.inputs):
                self._timed(batch)  # one untimed call: caches, not the machine, make the first slow
                deadline = time.perf_counter() + per_batch_s
                times: list[float] = []
                while len(times) < self.repeats and (len(times) < 3 or time.perf_counter() < deadline):
                    times.append(self._timed(batch))
                timings.append(timing_of(batch, times))
            bandwidth = memory_bandwidth_gb_s()
            return self.writer.add_point(label, t_ns, time.perf_counter() - started, timings, bandwidth)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        batch = min(self.inputs)
        while not self._stop.wait(self.interval_s):
            with self._lock:
                t_ns = time.monotonic_ns()
                times = sorted(self._timed(batch) for _ in range(PROBE_BURST))
            self.writer.add_probe(ProbeSample(t_ns=t_ns, batch=batch, ms=times[len(times) // 2],
                                              calls=PROBE_BURST))


def _open(args: argparse.Namespace) -> Probe:
    from models.artifacts import ArtifactLayout

    spec = ArtifactLayout(args.artifacts).spec() if args.artifacts else LinearSpec(
        classes=args.classes, features=args.features, seed=args.seed)
    batches = sorted(set(args.batch or [1]))
    weights = spec.weights()
    fn = torch_predictor(weights, args.threads)
    inputs = {b: np.ascontiguousarray(make_inputs(spec.features, b, seed=spec.seed + 1)) for b in batches}
    for batch, x in inputs.items():  # the same class ids as the reference, or the timings mean nothing
        if not np.array_equal(np.asarray(fn(x)), predict(weights, x)):
            raise RuntimeError(f"torch disagrees with the NumPy reference at batch {batch}")
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    header = new_header(framework="torch", threads=args.threads, model=spec.to_dict(), batches=batches,
                        cpus=cpus if args.pinned else None, probe_interval_s=args.probe_interval)
    writer = CalibrationWriter(args.out, header)
    return Probe(fn, inputs, writer, interval_s=args.probe_interval, repeats=args.repeats,
                 budget_s=args.budget)


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(probe: Probe, commands: Sequence[str] | Any = sys.stdin) -> None:
    """Answer the runner's commands (one JSON object a line) until `quit` or end of input."""
    from dataclasses import asdict

    _answer({"ok": "ready"})
    for line in commands:
        try:
            command = json.loads(line)
            if "calibrate" in command:
                _answer({"ok": asdict(probe.calibrate(str(command["calibrate"])))})
            elif "probe" in command:
                (probe.start if command["probe"] else probe.stop)()
                _answer({"ok": bool(command["probe"])})
            elif "quit" in command:
                break
            else:
                _answer({"error": f"unknown command {line.strip()!r}"})
        except Exception as exc:  # noqa: BLE001 - the runner decides; the probe answers
            _answer({"error": f"{type(exc).__name__}: {exc}"})
    probe.stop()
    probe.writer.close()


def watch(probe: Probe, seconds: float, every_s: float) -> dict[str, Any]:
    """A calibration every `every_s` seconds for `seconds`: the machine's drift, as a summary."""
    deadline = time.monotonic() + seconds
    k = 0
    while True:
        probe.calibrate(f"watch {k}")
        k += 1
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(every_s, left))
    probe.writer.close()
    log = read_calibration(probe.writer.path)
    return drift_summary(log.points)


def drift_summary(points: Sequence[CalibrationPoint]) -> dict[str, Any]:
    """Range and 10th-90th percentiles of the median predict time (smallest batch) over the points."""
    medians = np.array([p.predict[0].median_ms for p in points if p.predict], dtype=np.float64)
    bandwidth = np.array([p.bandwidth_gb_s for p in points if p.bandwidth_gb_s], dtype=np.float64)
    if medians.size == 0:
        return {"points": 0}

    def q(values: np.ndarray, p: float) -> float:
        return float(np.percentile(values, p, method="inverted_cdf"))

    summary: dict[str, Any] = {
        "points": int(medians.size),
        "batch": points[0].predict[0].batch,
        "median_ms": {"min": float(medians.min()), "p10": q(medians, 10), "p50": q(medians, 50),
                      "p90": q(medians, 90), "max": float(medians.max())},
    }
    if bandwidth.size:
        summary["bandwidth_gb_s"] = {"min": float(bandwidth.min()), "p50": q(bandwidth, 50),
                                     "max": float(bandwidth.max())}
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="an export (its model.json gives the model)")
    parser.add_argument("--classes", type=int, default=64)
    parser.add_argument("--features", type=int, default=262_144)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, action="append", help="a served batch size (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="calibration.jsonl to append to")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per batch and calibration")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of predict per calibration")
    parser.add_argument("--probe-interval", type=float, default=0.5)
    parser.add_argument("--pinned", action="store_true", help="record the CPU set this process runs on")
    parser.add_argument("--watch", type=float, default=None, help="seconds to watch the machine's drift")
    parser.add_argument("--every", type=float, default=4.0, help="seconds between calibrations with --watch")
    args = parser.parse_args(argv)
    if args.watch is None:  # driven by the runner: Ctrl-C reaches it too, and the runner closes it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    probe = _open(args)
    if args.watch is not None:
        print(json.dumps(watch(probe, args.watch, args.every), indent=2))
        return 0
    serve(probe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
