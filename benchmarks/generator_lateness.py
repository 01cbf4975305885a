"""The generator's lateness at full size at the demo's rates: engines A/B, interleaved in one run.

    python benchmarks/generator_lateness.py --engine old=/tmp/old-engine --engine new=. \\
        [--servers tfserving,torchserve] [--protocols grpc,rest-binary] [--rates 40,80,160,240] \\
        [--pairs 3] [--trace new] [--out benchmarks/results/generator_lateness.json --label NAME]

Each `--engine NAME=TREE` is a source tree of this project (a worktree or an unpacked commit, with
its generated stubs): its `inferload load` worker (`python -m loadtest._worker`, run with that tree
first on PYTHONPATH) is what gets measured, driven through the runner's own worker protocol. The
servers (tfs-compat and TorchServe with the demo's settings: TorchServe 1 worker, batch 1; TF
Serving without batching) serve the full-size model (64 x 262,144: 1 MiB per request) on the same
2 cores, unpinned, as `make demo` runs them. Per server, protocol and rate, `--pairs` rounds each
run every engine once, the order alternating round by round (A B, B A, A B...), so a slow minute
of the machine falls on both. Each run: 1 s warm-up, then the demo's step duration at that rate
(max(3 s, 1.2 x 360 / rate) since the demo judges p90 at inflation 10; 1.2 x 368 before, when
its results in benchmarks/results were measured; experiments/demo.yaml), max_in_flight 64, Poisson,
seed 0 (every engine gets the same schedule).

Per run: lateness (sent - scheduled) p50 / p99 of the measured requests, requests, drops and errors,
the worker's CPU per request (its own accounting, as benchmarks/generator_cpu.py), the worker's
threads' time waiting for a CPU (run-queue delay from /proc/PID/task/*/schedstat, ms per second of
run) and the CPU other processes took meanwhile (benchmarks/busy.py). Per engine and cell: the
medians over runs and the p99 of all runs' requests pooled.

`--cpu-group`: the whole benchmark (driver, servers, workers) runs in a cgroup-v1 `cpu` group of its
own with the highest shares, removed afterwards: on a machine shared with other sessions, what is
left of the machine for the demo's pair (server and generator on 2 cores, nothing else) when other
work runs beside it. Without it every process of the root group competes in its session's autogroup
(kernel.sched_autogroup_enabled), where SCHED_IDLE (what /work/bin/quiet gives other work) only
ranks a task inside its own session: another session's SCHED_IDLE job still gets an equal share.

`--trace NAME`: that engine's runs also record, for every pacer wake-up of the asyncio engine
(`AioEngine._on_alarm`), how late it woke and what the loop's thread did since its previous wake-up
(CPU time on the thread, time waiting for a CPU, the rest asleep or blocked): where a late arrival's
lateness went. Only for engines with `loadtest._aio_engine`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from busy import OtherWork  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "generator_lateness.json"
DEMO_SAMPLES = 360  # experiments/demo.yaml: a step lasts max(duration_s, 1.2 x 360 / rate) (p90, f 10)

TRACE_SHIM = r"""
import atexit, json, os, sys, time
from loadtest import _aio_engine
rows, totals = [], {"alarms": 0}
state = {"fd": None, "exit": None}
def sched():
    if state["fd"] is None:
        state["fd"] = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    cpu, wait, _ = os.pread(state["fd"], 64, 0).split()
    return int(cpu), int(wait)
original = _aio_engine.AioEngine._on_alarm
def on_alarm(self):
    now = time.monotonic_ns()
    due = self._next_ns
    cpu, wait = sched()
    previous = state["exit"]
    if previous is not None and due < 2**61:
        p_now, p_cpu, p_wait = previous
        wall = now - p_now
        rows.append((due, now - due, wall, cpu - p_cpu, wait - p_wait))
    original(self)
    state["exit"] = (time.monotonic_ns(), *sched())
_aio_engine.AioEngine._on_alarm = on_alarm
def dump():
    with open(os.environ["GENERATOR_LATENESS_TRACE"], "w") as out:
        json.dump(rows, out)
atexit.register(dump)
sys.argv[0] = "loadtest._worker"
import loadtest._worker
sys.exit(loadtest._worker.main(sys.argv[1:]))
"""


CPU_ROOT = Path("/sys/fs/cgroup/cpu")
MAX_SHARES = 262144


class CpuGroup:
    """This process (and every child it starts later) in a cgroup-v1 cpu group with MAX_SHARES."""

    def __init__(self, name: str) -> None:
        if not (CPU_ROOT / "cpu.shares").exists():
            raise SystemExit(f"--cpu-group needs the cgroup-v1 cpu controller at {CPU_ROOT}; run without it")
        self.path = CPU_ROOT / name
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.shares").write_text(str(MAX_SHARES))
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def close(self) -> None:
        """Everything still in the group (this process, a straggler) back to the root; the group removed."""
        for _ in range(50):
            pids = (self.path / "cgroup.procs").read_text().split()
            for pid in pids:
                try:
                    (CPU_ROOT / "cgroup.procs").write_text(pid)
                except OSError:  # it ended meanwhile
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        print(f"could not remove {self.path}", file=sys.stderr)


@contextlib.contextmanager
def cpu_group(wanted: bool) -> Iterator[None]:
    group = CpuGroup(f"generator-lateness-{os.getpid()}") if wanted else None
    try:
        yield
    finally:
        if group is not None:
            group.close()


def demo_duration(rate: float) -> float:
    return max(3.0, 1.2 * DEMO_SAMPLES / rate)


def start_servers(artifacts: Path, servers: list[str], state_dir: Path) -> Any:
    from serving import Ports, ServerSettings, up

    settings = ServerSettings(torchserve_workers=1, torchserve_batch_size=1, torchserve_max_batch_delay_ms=5,
                              tfserving_batching=False)
    return up(artifacts, servers=servers, settings=settings, ports=Ports.free(), state_dir=state_dir,
              timeout_s=240, progress=lambda line: print(f"  {line}", flush=True))


def port_of(stack: Any, server: str, protocol: str) -> int:
    ports = stack.ports
    if server == "tfserving":
        return int(ports.tfserving_grpc if protocol == "grpc" else ports.tfserving_rest)
    return int(ports.torchserve_grpc if protocol == "grpc" else ports.torchserve_inference)


def _thread_sched(pid: int) -> dict[str, tuple[int, int]]:
    """(CPU ns, run-queue wait ns) per thread of `pid`, keyed by tid and name."""
    found: dict[str, tuple[int, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu, wait, _ = f.read().split()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except (OSError, ValueError):
            continue
        found[f"{tid}:{name}"] = (int(cpu), int(wait))
    return found


class SchedWatch:
    """Samples the worker's threads' schedstat every 50 ms while it runs; keeps each thread's last."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.first = _thread_sched(pid)
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = _thread_sched(self.pid)
            if not now:
                return
            self.last.update(now)

    def result(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        waits: dict[str, float] = {}
        for key, (_cpu, wait) in self.last.items():
            cpu0, wait0 = self.first.get(key, (0, 0))
            name = key.split(":", 1)[1]
            waits[name] = waits.get(name, 0.0) + (wait - wait0) / 1e6
        return waits


def one_run(tree: Path, settings: dict[str, Any], out: Path, trace: Path | None) -> dict[str, Any]:
    from loadtest._runner import _read_events, _send, _WorkerState

    out.mkdir(parents=True, exist_ok=True)
    if trace is not None:
        argv = [sys.executable, "-c", TRACE_SHIM]
    else:
        argv = [sys.executable, "-m", "loadtest._worker"]
    argv += ["--stream", "0", "--streams", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    if trace is not None:
        env["GENERATOR_LATENESS_TRACE"] = str(trace)
    log_path = out / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                   text=True, env=env, cwd=tree)
    state = _WorkerState(process=process, log_path=log_path)
    threading.Thread(target=_read_events, args=(state,), daemon=True).start()
    _send(process.stdin, {"settings": settings})
    if not state.ready.wait(300) or not state.ready_info:
        process.kill()
        raise SystemExit(f"worker of {tree} failed:\n{state.log_tail()}")
    watch = SchedWatch(process.pid)
    started = time.monotonic()
    _send(process.stdin, {"start_ns": time.monotonic_ns() + 300_000_000})
    process.wait(settings["warmup_s"] + settings["duration_s"] + 120)
    wall = time.monotonic() - started
    waits = watch.result()
    if not state.done:
        raise SystemExit(f"worker of {tree} ended without its result:\n{state.log_tail()}")
    return {**state.done, "runq_wait_ms_by_thread": waits, "driver_wall_s": wall}


def measured_lateness_ms(out: Path) -> np.ndarray:
    """Lateness of the measured requests (not dropped), from the worker's own records."""
    from loadtest._schema import stream_path

    late = []
    with open(stream_path(out, 0)) as handle:
        header = json.loads(handle.readline())
        start, end = header.get("measure_start_ns", 0), header.get("measure_end_ns", 2**63)
        for line in handle:
            record = json.loads(line)
            if record.get("status") != "dropped" and start <= record["scheduled_ns"] < end:
                late.append((record["sent_ns"] - record["scheduled_ns"]) / 1e6)
    return np.asarray(late, dtype=float)


def summarize_trace(path: Path) -> dict[str, Any]:
    """Where the late pacer wake-ups' time went: for wake-ups later than 1 / 5 ms, the sums of their
    lateness, and of the loop thread's CPU, run-queue wait and the rest since its previous wake-up."""
    rows = json.loads(path.read_text()) if path.exists() else []
    result: dict[str, Any] = {"wakeups": len(rows)}
    for limit in (1.0, 5.0):
        late = [r for r in rows if r[1] / 1e6 > limit]
        wall = sum(r[2] for r in late) / 1e6
        cpu = sum(r[3] for r in late) / 1e6
        wait = sum(r[4] for r in late) / 1e6
        result[f"over_{limit:g}ms"] = {
            "count": len(late),
            "lateness_ms_sum": round(sum(r[1] for r in late) / 1e6, 2),
            "since_previous_wakeup_ms": {"wall": round(wall, 2), "thread_cpu": round(cpu, 2),
                                         "runq_wait": round(wait, 2),
                                         "asleep_or_blocked": round(wall - cpu - wait, 2)},
        }
    worst = sorted(rows, key=lambda r: -r[1])[:10]
    result["worst"] = [
        {"lateness_ms": round(r[1] / 1e6, 2), "wall_ms": round(r[2] / 1e6, 2),
         "thread_cpu_ms": round(r[3] / 1e6, 2), "runq_wait_ms": round(r[4] / 1e6, 2)} for r in worst
    ]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", action="append", required=True,
                        help="NAME=TREE (repeatable; 2 or more, run in alternating order)")
    parser.add_argument("--servers", default="tfserving,torchserve")
    parser.add_argument("--protocols", default="grpc,rest-binary")
    parser.add_argument("--rates", default="40,80,160,240")
    parser.add_argument("--pairs", type=int, default=3,
                        help="rounds per cell, each running every engine once")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration-scale", type=float, default=1.0, help="x the demo's step duration")
    parser.add_argument("--artifacts", type=Path, default=REPO_ROOT / "artifacts" / "64x262144-s0")
    parser.add_argument("--trace", action="append", default=[], help="engine NAME whose pacer is traced")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: print only)")
    parser.add_argument("--label", default=None, help="key of this run in --out (default: the time)")
    parser.add_argument("--note", default="")
    parser.add_argument("--cpu-group", action="store_true",
                        help="run in a cpu cgroup with the highest shares")
    parser.add_argument("--work", type=Path, default=None, help="where the runs' files go")
    args = parser.parse_args(argv)

    engines = {}
    for text in args.engine:
        name, _, tree = text.partition("=")
        engines[name] = Path(tree).resolve()
    servers = args.servers.split(",")
    protocols = args.protocols.split(",")
    rates = [float(r) for r in args.rates.split(",")]
    model = json.loads((args.artifacts / "model.json").read_text())
    work = args.work or Path(tempfile.mkdtemp(prefix="generator-lateness-"))
    commits = {}
    for name, tree in engines.items():
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip()
        if not head and (tree / "COMMIT").exists():  # an unpacked `git archive`
            head = (tree / "COMMIT").read_text().strip()
        commits[name] = head
    runs: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    began = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with cpu_group(args.cpu_group), OtherWork() as whole:
        stack = start_servers(args.artifacts, servers, work / "servers")
        try:
            kind = stack.tfserving_kind
            for server in servers:
                for protocol in protocols:
                    port = port_of(stack, server, protocol)
                    base = {
                        "server": server, "protocol": protocol, "host": "127.0.0.1", "port": port,
                        "features": model["features"], "max_in_flight": 64, "timeout_s": 30.0,
                        "warmup_s": args.warmup, "seed": 0, "run": "generator-lateness",
                        "lateness_p99_limit_ms": 25.0,
                        **({"server_kind": kind} if server == "tfserving" and kind else {}),
                    }
                    first = next(iter(engines.values()))  # warm the server and this path once, discarded
                    one_run(first, {**base, "rate": 80.0, "duration_s": 2.0},
                            work / f"warm-{server}-{protocol}", None)
                    for rate in rates:
                        duration = round(demo_duration(rate) * args.duration_scale, 2)
                        settings = {**base, "rate": rate, "duration_s": duration}
                        for pair in range(args.pairs):
                            order = list(engines) if pair % 2 == 0 else list(reversed(engines))
                            for name in order:
                                out = work / f"{server}-{protocol}-{rate:g}-{pair}-{name}"
                                trace = out.with_suffix(".trace.json") if name in args.trace else None
                                with OtherWork() as other:
                                    done = one_run(engines[name], settings, out, trace)
                                late = measured_lateness_ms(out)
                                counters = done["counters"]
                                requests = max(1, int(counters["done"]))
                                run = {
                                    "server": server, "protocol": protocol, "rate": rate, "pair": pair,
                                    "engine": name, "duration_s": settings["duration_s"],
                                    "measured_requests": int(late.size),
                                    "lateness_p50_ms": float(np.percentile(late, 50)) if late.size else None,
                                    "lateness_p99_ms": float(np.percentile(late, 99)) if late.size else None,
                                    "lateness_max_ms": float(late.max()) if late.size else None,
                                    "dropped": counters["dropped"], "errors": counters["errors"],
                                    "requests": requests,
                                    "cpu_us_per_request": 1e6 * done["cpu_s"] / requests,
                                    "worker_cpu_percent": done.get("cpu_percent"),
                                    "runq_wait_ms_per_s": {
                                        k: round(v / done["wall_s"], 3)
                                        for k, v in sorted(done["runq_wait_ms_by_thread"].items(),
                                                           key=lambda kv: -kv[1])[:4]
                                    },
                                    "other_cpu_percent_mean": other.result()["other_cpu_percent_mean"],
                                    "loadavg_1m": os.getloadavg()[0],
                                    "late": late.round(3).tolist(),
                                }
                                if trace is not None:
                                    run["trace"] = summarize_trace(trace)
                                runs.append(run)
                                waits = run["runq_wait_ms_per_s"]
                                print(f"{server:10s} {protocol:11s} {rate:5.0f}/s pair {pair} {name:8s} "
                                      f"n={late.size:4d} late p50/p99 {run['lateness_p50_ms']:.2f}/"
                                      f"{run['lateness_p99_ms']:.2f} ms  drop {run['dropped']} "
                                      f"err {run['errors']}  CPU {run['cpu_us_per_request']:5.0f} us/req"
                                      f"  runq {sum(waits.values()):.1f} ms/s"
                                      f"  other {run['other_cpu_percent_mean']} %",
                                      flush=True)
                                if trace is not None:
                                    print(f"    trace: {json.dumps(run['trace']['over_5ms'])}", flush=True)
        finally:
            stack.down()
    table = summarize(runs, list(engines))
    print_table(table)
    if args.out is not None:
        results = json.loads(args.out.read_text()) if args.out.exists() else {
            "schema": "inferload.benchmark.generator_lateness", "schema_version": 1,
            "method": " ".join(__doc__.split("\n\n")[i].replace("\n", " ") for i in (2, 3, 4)),
            "runs": {},
        }
        label = args.label or began
        results["runs"][label] = {
            "measured_at": began,
            "engines": {n: {"tree": str(t), "commit": commits[n]} for n, t in engines.items()},
            "note": args.note, "cpu_group": args.cpu_group, "tfserving_kind": kind,
            "loadavg_before": [round(x, 2) for x in load_before],
            "other_work": whole.result(), "table": table,
            "runs": [{k: v for k, v in r.items() if k != "late"} for r in runs],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"written to {args.out} under {label!r}")
    return 0


def summarize(runs: list[dict[str, Any]], engines: list[str]) -> list[dict[str, Any]]:
    """One row per server, protocol, rate and engine: medians over runs, and the pooled p99."""
    rows = []
    cells = sorted({(r["server"], r["protocol"], r["rate"]) for r in runs}, key=lambda c: (c[0], c[1], c[2]))
    for server, protocol, rate in cells:
        for name in engines:
            key = (server, protocol, rate, name)
            mine = [r for r in runs if (r["server"], r["protocol"], r["rate"], r["engine"]) == key]
            if not mine:
                continue
            pooled = np.concatenate([np.asarray(r["late"], dtype=float) for r in mine])
            p99s = [r["lateness_p99_ms"] for r in mine if r["lateness_p99_ms"] is not None]
            rows.append({
                "server": server, "protocol": protocol, "rate": rate, "engine": name, "runs": len(mine),
                "requests": int(pooled.size),
                "lateness_p50_ms_median": round(statistics.median(r["lateness_p50_ms"] for r in mine), 3),
                "lateness_p99_ms_median": round(statistics.median(p99s), 3),
                "lateness_p99_ms_range": [round(min(p99s), 3), round(max(p99s), 3)],
                "lateness_p99_ms_pooled": round(float(np.percentile(pooled, 99)), 3) if pooled.size else None,
                "over_25ms_share": round(float((pooled > 25).mean()), 4) if pooled.size else None,
                "dropped": sum(r["dropped"] for r in mine), "errors": sum(r["errors"] for r in mine),
                "cpu_us_per_request_median": round(statistics.median(r["cpu_us_per_request"] for r in mine)),
                "runq_wait_ms_per_s_median": round(statistics.median(sum(r["runq_wait_ms_per_s"].values())
                                                                     for r in mine), 2),
                "other_cpu_percent_max": max((r["other_cpu_percent_mean"] or 0) for r in mine),
            })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\nserver     protocol    rate engine    runs  req  late p50 | p99 median [min-max] pooled |"
          " >25ms  drop err  CPU us/req  runq ms/s")
    for row in rows:
        lo, hi = row["lateness_p99_ms_range"]
        print(f"{row['server']:10s} {row['protocol']:11s} {row['rate']:4.0f} {row['engine']:9s} "
              f"{row['runs']:3d} {row['requests']:5d} {row['lateness_p50_ms_median']:8.2f} | "
              f"{row['lateness_p99_ms_median']:7.2f} [{lo:.2f}-{hi:.2f}] "
              f"{row['lateness_p99_ms_pooled']:7.2f} | {100 * row['over_25ms_share']:5.1f}% "
              f"{row['dropped']:4d} {row['errors']:3d} {row['cpu_us_per_request_median']:8d} "
              f"{row['runq_wait_ms_per_s_median']:8.2f}")


if __name__ == "__main__":
    sys.exit(main())
