"""The regression gate on real servers: an A/A pair of smoke runs passes, a 30 % slowdown is caught.

    python benchmarks/gate_slowdown.py [--out /tmp/gate-check] [--stop-share 0.25]

Runs experiments/smoke.yaml three times back to back on this machine (real TF Serving (tfs-compat),
TorchServe and Triton, all three protocols):
1. `base`;
2. `aa`, the same again (an A/A pair with `base`);
3. `slow`, the same with every server process slowed: a SIGSTOP / SIGCONT duty cycle on the servers'
   processes (not the load generator, not the calibration probe), stopped `--stop-share` of every
   10 ms period. A stopped server makes no progress, so every request's service stretches by about
   1 / (1 - share): 0.25 -> +33 % of the server's own time (the client's share of each latency is not
   slowed, so the measured ratio is somewhat lower; the script reports what it measured).
Then `inferload report aa --compare base --fail-on-regression` (expected: exit 0, or 2 when the
calibration saw the machine drift between the runs) and `inferload report slow --compare base
--fail-on-regression` (expected: exit 1, every cell worse). Writes benchmarks/results/gate_slowdown.json:
exit codes, the gate's lines, each run's calibration figure and the per-cell latency ratios.
Run it through /work/bin/heavy (it starts servers and sends load; about 10 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gate_slowdown.json"
SERVER_MARKS = ("serving.tfs_compat", "org.pytorch.serve", "model_service_worker", "ts.model_server",
                "tritonserver", "triton_python_backend_stub")
PERIOD_S = 0.010


def _servers(root: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in root.children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if any(mark in line for mark in SERVER_MARKS):
            found.append(child)
    return found


def _duty_cycle(run: subprocess.Popen[bytes], share: float, stop: threading.Event) -> None:
    """Stop the run's server processes `share` of every period until `stop` is set (always resumed)."""
    root = psutil.Process(run.pid)
    servers: list[psutil.Process] = []
    refreshed = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if now - refreshed > 1.0:
            servers, refreshed = _servers(root), now
        stopped = []
        for server in servers:
            try:
                os.kill(server.pid, signal.SIGSTOP)
                stopped.append(server)
            except ProcessLookupError:
                pass
        time.sleep(PERIOD_S * share)
        for server in stopped:
            try:
                os.kill(server.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        time.sleep(PERIOD_S * (1 - share))


def _run(out: Path, *, slow_share: float | None) -> int:
    command = [sys.executable, "-m", "inferload", "run", str(ROOT / "experiments" / "smoke.yaml"),
               "--out", str(out), "--free-ports", "--no-progress", "--no-floor"]
    run = subprocess.Popen(command, cwd=ROOT)
    stop = threading.Event()
    cycler = None
    if slow_share is not None:
        cycler = threading.Thread(target=_duty_cycle, args=(run, slow_share, stop), daemon=True)
        cycler.start()
    try:
        return run.wait()
    finally:
        stop.set()
        if cycler is not None:
            cycler.join()


def _gate(after: Path, before: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "inferload", "report", str(after), "--compare", str(before),
               "--fail-on-regression"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    summary = after / "summary.json"
    comparison = json.loads(summary.read_text()).get("comparison") if summary.is_file() else None
    return {"exit": done.returncode, "stdout": done.stdout.splitlines()[-30:],
            "stderr": done.stderr.splitlines()[-10:], "comparison": comparison}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gate-check"))
    parser.add_argument("--stop-share", type=float, default=0.25)
    args = parser.parse_args()
    started = time.time()
    runs = {"base": None, "aa": None, "slow": args.stop_share}
    codes = {}
    for name, share in runs.items():
        codes[name] = _run(args.out / name, slow_share=share)
        print(f"{name}: inferload run exit {codes[name]}", flush=True)
    result = {
        "benchmark": "gate_slowdown",
        "matrix": "experiments/smoke.yaml",
        "injected": f"SIGSTOP/SIGCONT duty cycle on the server processes: stopped {args.stop_share:.0%} of "
                    f"every {PERIOD_S * 1000:g} ms (service stretched ~x{1 / (1 - args.stop_share):.2f})",
        "run_exit": codes,
        "aa_gate": _gate(args.out / "aa", args.out / "base"),
        "slow_gate": _gate(args.out / "slow", args.out / "base"),
        "load_average_1m": os.getloadavg()[0],
        "wall_s": round(time.time() - started, 1),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"A/A gate exit {result['aa_gate']['exit']}, slowdown gate exit {result['slow_gate']['exit']}; "
          f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
