"""The reliability table: each fault injected into real runs, records expected vs found, the errors.

    python benchmarks/reliability.py [--runs 3] [--only NAME[,NAME]] [--full-size]
        [--out benchmarks/results/reliability.json]

Needs root (network namespaces, tc, iptables, a tmpfs). TorchServe serves the small model
(64 x 1,024) on a namespace host (198.18.0.0/15, prefix INFERLOAD_NETNS_PREFIX + "b"); the load
goes from this namespace across the veth link, as `inferload load` and `inferload run` run for a
user. The faults and the record audit are the ones the tests use (tests/faults/: hostile_link.py,
delay_proxy.py, accounting.py, tiny_disk.py):

- records expected: the arrivals the seeded schedule put in the run (recomputed from the records
  header, not taken from the generator's counters); found: records read back; lost: scheduled seqs
  with no record; duplicated: a seq recorded twice;
- every non-ok record's error, with the numbers in it folded (addresses, seconds);
- per fault the figure that says whether it was measured right: the added delay seen in the
  records (median shift with its interval), the memory of the generator under overload, how long
  orphaned workers ran on, how many cells a resumed matrix redid.

`--full-size` adds the rows where the model's size matters (262,144 features: 1 MiB binary bodies):
overload memory and a shaped link. Writes the JSON and a Markdown table beside it (.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests"), str(REPO / "tests" / "faults")]

from accounting import RunAudit, audit  # noqa: E402
from busy import OtherWork  # noqa: E402
from fault_runs import done_cells, external_matrix  # noqa: E402
from hostile_link import (  # noqa: E402
    bandwidth_limit,
    delay_proxy,
    later,
    link_cut,
    missing_tools,
    packet_loss,
    run_started,
)
from netns import NetnsHost, default_prefix, netns_host, skip_reason  # noqa: E402
from tiny_disk import resize, tiny_disk  # noqa: E402

from loadtest import LoadSummary, read_records  # noqa: E402
from loadtest._percentiles import quantile_interval  # noqa: E402
from loadtest._schema import run_streams  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SMALL = (64, 1024)
FULL = (64, 262144)
TIMEOUT_S = 2.0


@dataclass
class Server:
    """TorchServe on the namespace host."""

    host: NetnsHost
    ports: dict[str, int]
    features: int

    def args(self, protocol: str, port: int | None = None) -> list[str]:
        port = port or self.ports["torchserve_grpc" if protocol == "grpc" else "torchserve_inference"]
        return ["--server", "torchserve", "--protocol", protocol, "--host", f"{self.host.address}:{port}",
                "--metadata-url", f"http://{self.host.address}:{self.ports['torchserve_management']}",
                "--features", str(self.features)]


@dataclass
class Row:
    """One run under one fault."""

    fault: str
    protocol: str
    model: str
    run: int
    returncode: int
    wall_s: float
    expected: int
    found: int
    missing: int
    duplicated: int
    ok_beyond_timeout: int
    statuses: dict[str, int]
    errors: dict[str, int]
    message: str | None  # the CLI's own error line when it failed
    figures: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False  # the fault stops the run by design: the schedule past the stop is never sent


def gaps_before_stop(run_dir: Path) -> int:
    """Seqs below each stream's highest recorded seq that have no record: for a run the fault stops
    (kill -9, a full disk), what lies before its last record but never reached the disk (in flight or
    unflushed when it stopped). The schedule's later arrivals were never sent, so are not counted."""
    gaps = 0
    for path in run_streams(run_dir):
        seqs = {record.seq for record in read_records(path)}
        if seqs:
            gaps += sum(1 for seq in range(max(seqs)) if seq not in seqs)
    return gaps


def inferload(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferload", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def _error_line(done: subprocess.CompletedProcess[str]) -> str | None:
    if done.returncode == 0:
        return None
    lines = [line for line in ((done.stderr or "") + "\n" + (done.stdout or "")).splitlines() if line.strip()]
    own = [line for line in lines if re.match(r"inferload [\w-]+: error:", line)]  # the CLI's own words
    errors = own or [line for line in lines if "error" in line.lower()]
    if errors or lines:
        # this script's own temp directories differ per run: fold them so equal errors read as one
        return re.sub(re.escape(tempfile.gettempdir()) + r"/reliability-[^/\s]+", "$WORK",
                      (errors or lines)[0])[:400]
    return f"exit {done.returncode}, no output (killed)"


def _row(fault: str, protocol: str, model: str, run: int, done: subprocess.CompletedProcess[str],
         wall_s: float, out: Path, **figures: Any) -> Row:
    result = audit(out) if any(out.glob("requests*.jsonl")) else RunAudit()
    return Row(fault, protocol, model, run, done.returncode, round(wall_s, 1), result.expected, result.found,
               result.missing, result.duplicated, result.ok_beyond_timeout, dict(result.statuses),
               dict(result.errors.most_common(4)), _error_line(done), figures)


def load(server: Server, protocol: str, out: Path, *, rate: float, duration_s: float,
         timeout_s: float = TIMEOUT_S, port: int | None = None,
         extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = inferload("load", *server.args(protocol, port), "--rate", str(rate), "--duration", str(duration_s),
                     "--warmup", "0.5", "--timeout", str(timeout_s), "--lateness-limit-ms", "1000",
                     "--out", str(out), "--quiet", *extra)
    return done, time.monotonic() - started


# -- the faults -----------------------------------------------------------------------------------------
Fault = Callable[[Server, str, int, Path], Row]


def no_fault(server: Server, protocol: str, run: int, work: Path) -> Row:
    done, wall = load(server, protocol, work / "out", rate=40, duration_s=4)
    return _row("none", protocol, "small", run, done, wall, work / "out")


def delay(server: Server, protocol: str, run: int, work: Path) -> Row:
    """30 ms +- 5 ms on the server's answers (delay_proxy.py), bracketed by runs through the same proxy
    at 0 ms (without, with, without: a drift of the server's own latency falls on both sides)."""
    upstream = server.ports["torchserve_grpc" if protocol == "grpc" else "torchserve_inference"]
    latencies: dict[str, list[float]] = {}
    delayed: tuple[subprocess.CompletedProcess[str], float, Path] | None = None
    for label, delay_ms, jitter_ms in (("before", 0.0, 0.0), ("delayed", 30.0, 5.0), ("after", 0.0, 0.0)):
        with delay_proxy(server.host, upstream, delay_ms, jitter_ms=jitter_ms, seed=run) as proxy:
            out = work / label
            done, wall = load(server, protocol, out, rate=40, duration_s=4, port=proxy.port)
        latencies[label] = audit(out).ok_latencies_ms
        if label == "delayed":
            delayed = (done, wall, out)
    assert delayed is not None
    base = quantile_interval(latencies["before"] + latencies["after"], 50)
    slow = quantile_interval(latencies["delayed"], 50)
    if None in (base.value, base.low, base.high, slow.value, slow.low, slow.high):
        shift: dict[str, Any] = {"added_ms": 30.0, "note": "too few ok records for a median interval"}
    else:
        interval = [round(slow.low - base.high, 2), round(slow.high - base.low, 2)]  # type: ignore[operator]
        median_shift = round(slow.value - base.value, 2)  # type: ignore[operator]
        shift = {"added_ms": 30.0, "jitter_ms": 5.0, "median_shift_ms": median_shift, "interval_ms": interval,
                 "within_1ms_plus_interval": interval[0] - 1 <= 30.0 <= interval[1] + 1,
                 "min_latency_ms": round(min(latencies["delayed"]), 2)}
    done, wall, out = delayed
    return _row("delay 30 ms +- 5 ms (proxy)", protocol, "small", run, done, wall, out, delay=shift)


def loss(probability: float) -> Fault:
    def fault(server: Server, protocol: str, run: int, work: Path) -> Row:
        with packet_loss(server.host, probability):
            done, wall = load(server, protocol, work / "out", rate=30, duration_s=4)
        name = f"packet loss {probability:.0%} both ways"
        return _row(name, protocol, "small", run, done, wall, work / "out")

    return fault


def lost_answers(server: Server, protocol: str, run: int, work: Path) -> Row:
    out = work / "out"
    with later(lambda: packet_loss(server.host, 1.0, direction="responses"), 1.5, since=run_started(out)):
        done, wall = load(server, protocol, out, rate=30, duration_s=4)
    return _row("answers lost from 1.5 s (100 % drop, server to client)", protocol, "small", run, done, wall,
                out)


def shaped(kbit: int, *, rate: float, batch: int, model: str = "small") -> Fault:
    def fault(server: Server, protocol: str, run: int, work: Path) -> Row:
        with bandwidth_limit(server.host, kbit):
            done, wall = load(server, protocol, work / "out", rate=rate, duration_s=4,
                              extra=("--batch", str(batch), "--max-in-flight", "64"))
        name = f"bandwidth {kbit / 1000:g} Mbit/s, {rate:g}/s of batch {batch}"
        return _row(name, protocol, model, run, done, wall, work / "out")

    return fault


def cut(restore_after_s: float | None) -> Fault:
    def fault(server: Server, protocol: str, run: int, work: Path) -> Row:
        out = work / "out"
        with later(lambda: link_cut(server.host), 1.5, restore_after_s, since=run_started(out)):
            done, wall = load(server, protocol, out, rate=30, duration_s=6, timeout_s=1.0)
        name = ("link cut at 1.5 s for good" if restore_after_s is None
                else f"link cut at 1.5 s for {restore_after_s:g} s")
        return _row(name, protocol, "small", run, done, wall, out)

    return fault


@contextmanager
def sampling_worker_rss(parent: Callable[[], psutil.Process | None]) -> Iterator[list[tuple[float, float]]]:
    """(seconds, MB) of the load workers' summed RSS every 0.25 s while the block runs."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.wait(0.25):
            process = parent()
            if process is None:
                continue
            total = 0
            try:
                for child in process.children(recursive=True):
                    if "loadtest._worker" in " ".join(child.cmdline()):
                        total += child.memory_info().rss
            except psutil.Error:
                continue
            if total:
                samples.append((time.monotonic() - started, total / 1e6))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def overload(model: str) -> Fault:
    """10x the server's capacity (closed loop, 8 in flight, measured first) for 12 s."""

    def fault(server: Server, protocol: str, run: int, work: Path) -> Row:
        capacity_dir = work / "capacity"
        inferload("load", *server.args(protocol), "--concurrency", "8", "--duration", "3", "--warmup", "0.5",
                  "--out", str(capacity_dir), "--quiet")
        capacity = LoadSummary.read(capacity_dir / "load.json").ok_rate
        rate = round(10 * capacity)
        out = work / "out"
        argv = [sys.executable, "-m", "inferload", "load", *server.args(protocol), "--rate", str(rate),
                "--duration", "12", "--warmup", "0.5", "--timeout", "5", "--lateness-limit-ms", "1000",
                "--out", str(out), "--quiet"]
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        handle = psutil.Process(process.pid)
        with sampling_worker_rss(lambda: handle) as rss:
            stdout, stderr = process.communicate(timeout=600)
        wall = time.monotonic() - started
        done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
        steady = [mb for t, mb in rss if t > rss[0][0] + 3.0] if rss else []  # after start-up and pool
        summary = LoadSummary.read(out / "load.json")
        figures = {"capacity_per_s": round(capacity, 1), "offered_per_s": rate,
                   "worker_rss_mb": {"first_steady": round(steady[0], 1) if steady else None,
                                     "max": round(max(steady), 1) if steady else None,
                                     "last": round(steady[-1], 1) if steady else None,
                                     "growth": round(steady[-1] - steady[0], 1) if steady else None},
                   "drops_in_load_json": summary.counts_total["dropped"],
                   "valid": summary.valid, "invalid_reasons": summary.invalid_reasons}
        return _row("overload: 10x capacity (measured first)", protocol, model, run, done, wall, out,
                    overload=figures)

    return fault


def disk_full(server: Server, protocol: str, run: int, work: Path) -> Row:
    """`inferload load` writing to a 192 kB tmpfs at 300/s for 20 s."""
    with tiny_disk(work / "disk", 192) as disk:
        out = disk / "out"
        done, wall = load(server, protocol, out, rate=300, duration_s=20, timeout_s=5)
        row = _row("results disk full (192 kB tmpfs)", protocol, "small", run, done, wall, out,
                   stopped_after_s=round(wall, 1), window_s=20.5, gaps_before_stop=gaps_before_stop(out))
        row.stopped = True
    return row


def _workers(process: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        return [c for c in psutil.Process(process.pid).children(recursive=True)
                if "loadtest._worker" in " ".join(c.cmdline())]
    except psutil.Error:
        return []


def _orphans_for(workers: list[psutil.Process], limit_s: float = 60.0) -> float | None:
    """Seconds until every orphaned worker has exited (None: still running at the limit; then killed)."""
    started = time.monotonic()
    _, alive = psutil.wait_procs(workers, timeout=limit_s)
    for worker in alive:
        worker.kill()
    return None if alive else round(time.monotonic() - started, 2)


def kill_load(server: Server, protocol: str, run: int, work: Path) -> Row:
    """SIGKILL to `inferload load` 2 s into a 60 s run: how long its workers go on."""
    out = work / "out"
    argv = [sys.executable, "-m", "inferload", "load", *server.args(protocol), "--rate", "30",
            "--duration", "60", "--warmup", "0", "--out", str(out), "--quiet"]
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (any(out.glob("requests*.jsonl")) and _workers(process)):
        time.sleep(0.05)
    time.sleep(2.0)
    workers = _workers(process)
    os.kill(process.pid, signal.SIGKILL)
    stdout, stderr = process.communicate()
    orphans_s = _orphans_for(workers)
    done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    result = audit(out)
    return Row("kill -9 of inferload load at 2 s", protocol, "small", run, process.returncode,
               round(time.monotonic() - started, 1), result.expected, result.found, result.missing,
               result.duplicated, result.ok_beyond_timeout, dict(result.statuses),
               dict(result.errors.most_common(3)), _error_line(done),
               {"orphan_workers_ran_on_s": orphans_s, "gaps_before_stop": gaps_before_stop(out),
                "note": "expected: the full 60 s schedule; found: what was sent before the kill (a killed "
                        "run is short by design)"}, stopped=True)


def _matrix_audit(out: Path, cells: dict[str, str]) -> RunAudit:
    total = RunAudit()
    for cell_id in cells:
        one = audit(out / "cells" / cell_id)
        total.expected += one.expected
        total.found += one.found
        total.missing += one.missing
        total.duplicated += one.duplicated
        total.ok_beyond_timeout += one.ok_beyond_timeout
        total.statuses.update(one.statuses)
        total.errors.update(one.errors)
    return total


def kill_matrix(server: Server, protocol: str, run: int, work: Path) -> Row:
    """SIGKILL to `inferload run` during its third cell (of 6), then the same command again."""
    matrix = work / "m.yaml"
    matrix.write_text(external_matrix(f"killed-{run}", address=server.host.address, ports=server.ports,
                                      features=server.features, rates=[20, 30, 40], duration_s=2))
    out = work / "results"
    argv = [sys.executable, "-m", "inferload", "run", str(matrix), "--out", str(out), "--no-progress",
            "--no-floor"]
    started = time.monotonic()
    runner = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (len(done_cells(out)) >= 2 and _workers(runner)):
        time.sleep(0.05)
    before = done_cells(out)
    workers = _workers(runner)
    os.kill(runner.pid, signal.SIGKILL)
    runner.communicate()
    orphans_s = _orphans_for(workers)
    rerun = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900)
    after = done_cells(out)
    redone = [cell for cell, text in before.items() if after.get(cell) != text]
    result = _matrix_audit(out, after)
    figures = {"cells": 6, "done_before_kill": len(before), "done_after_rerun": len(after),
               "done_cells_redone": len(redone), "attempts_kept": len(list((out / "attempts").iterdir()))
               if (out / "attempts").is_dir() else 0, "orphan_workers_ran_on_s": orphans_s}
    return Row("kill -9 of inferload run mid-matrix, then rerun", "both", "small", run, rerun.returncode,
               round(time.monotonic() - started, 1), result.expected, result.found, result.missing,
               result.duplicated, result.ok_beyond_timeout, dict(result.statuses),
               dict(result.errors.most_common(3)), _error_line(rerun), {"resume": figures})


def disk_full_matrix(server: Server, protocol: str, run: int, work: Path) -> Row:
    """`inferload run` of 6 cells on a 150 kB tmpfs; then 4 MB and the same command again."""
    matrix = work / "m.yaml"
    matrix.write_text(external_matrix(f"disk-{run}", address=server.host.address, ports=server.ports,
                                      features=server.features, rates=[20, 30, 40], duration_s=2))
    with tiny_disk(work / "disk", 150) as disk:
        out = disk / "results"
        argv = ["run", str(matrix), "--out", str(out), "--no-progress", "--no-floor"]
        started = time.monotonic()
        first = inferload(*argv)
        before = done_cells(out)
        resize(disk, 4096)
        second = inferload(*argv)
        after = done_cells(out)
        result = _matrix_audit(out, after)
    figures = {"first_run_exit": first.returncode, "first_run_error": _error_line(first),
               "first_run_traceback": "Traceback (most recent call last)" in first.stderr,
               "first_run_stderr_tail": first.stderr[-1500:],
               "done_after_first": len(before), "done_after_resume": len(after),
               "done_cells_redone": len([c for c, t in before.items() if after.get(c) != t])}
    return Row("results disk full mid-matrix, then room and rerun", "both", "small", run, second.returncode,
               round(time.monotonic() - started, 1), result.expected, result.found, result.missing,
               result.duplicated, result.ok_beyond_timeout, dict(result.statuses),
               dict(result.errors.most_common(3)), _error_line(first), {"resume": figures})


SMALL_FAULTS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    "none": (no_fault, ("rest-json", "grpc")),
    "delay": (delay, ("rest-json", "grpc")),
    "loss5": (loss(0.05), ("rest-json", "grpc")),
    "loss30": (loss(0.30), ("rest-json", "grpc")),
    "lost-answers": (lost_answers, ("rest-json", "grpc")),
    "bandwidth": (shaped(2000, rate=8, batch=1), ("rest-json", "grpc")),
    "bandwidth-flooded": (shaped(2000, rate=20, batch=32), ("rest-json",)),
    "cut-restored": (cut(2.0), ("rest-json", "grpc")),
    "cut-for-good": (cut(None), ("rest-json", "grpc")),
    "overload": (overload("small"), ("rest-json", "grpc")),
    "disk-full": (disk_full, ("grpc",)),
    "disk-full-matrix": (disk_full_matrix, ("both",)),
    "kill-load": (kill_load, ("grpc",)),
    "kill-matrix": (kill_matrix, ("both",)),
}
FULL_FAULTS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    "full-overload": (overload("full"), ("rest-binary", "grpc")),
    "full-bandwidth": (shaped(100_000, rate=4, batch=1, model="full"), ("rest-binary",)),
}


@contextmanager
def server_host(artifacts: Path, prefix: str, index: int) -> Iterator[Server]:
    state_dir = Path(tempfile.mkdtemp(prefix="reliability-servers-"))
    with netns_host(prefix, index) as host:
        up = host.run([sys.executable, "-m", "inferload", "serve", "up", "--servers", "torchserve",
                       "--artifacts", str(artifacts), "--bind", host.address, "--free-ports",
                       "--state-dir", str(state_dir), "--timeout", "300", "--cpus", "all"],
                      cwd=REPO, capture_output=True, text=True, timeout=400)
        try:
            if up.returncode != 0:
                raise SystemExit(f"serve up on the namespace host failed:\n{up.stdout}\n{up.stderr}")
            state = json.loads((state_dir / "servers.json").read_text())
            features = json.loads((artifacts / "model.json").read_text())["features"]
            yield Server(host, state["ports"], int(features))
        finally:
            host.run([sys.executable, "-m", "inferload", "serve", "down", "--state-dir", str(state_dir)],
                     cwd=REPO, capture_output=True, timeout=120)


def export(size: tuple[int, int], root: Path) -> Path:
    target = root / f"{size[0]}x{size[1]}"
    if not (target / "model.json").exists():
        done = inferload("export", "--out", str(target), "--classes", str(size[0]),
                         "--features", str(size[1]))
        if done.returncode != 0:
            raise SystemExit(f"export failed:\n{done.stderr}")
    return target


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """One line per fault x protocol x model over its runs."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.fault, row.protocol, row.model), []).append(row)
    table = []
    for (fault, protocol, model), runs in groups.items():
        statuses: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for row in runs:
            statuses.update(row.statuses)
            errors.update(row.errors)
        table.append({
            "fault": fault, "protocol": protocol, "model": model, "runs": len(runs),
            "exit_codes": sorted({row.returncode for row in runs}),
            "exit_counts": {str(code): n
                            for code, n in sorted(Counter(row.returncode for row in runs).items())},
            "stopped_by_fault": any(row.stopped for row in runs),
            "records_expected": sum(row.expected for row in runs),
            "records_found": sum(row.found for row in runs),
            "lost": sum(row.missing for row in runs), "duplicated": sum(row.duplicated for row in runs),
            "ok_beyond_timeout": sum(row.ok_beyond_timeout for row in runs),
            "statuses": dict(statuses), "errors": dict(errors.most_common(3)),
            "messages": sorted({row.message for row in runs if row.message}),
            "figures": [row.figures for row in runs if row.figures],
            "wall_s": [row.wall_s for row in runs],
        })
    return table


def _figure_text(figures: list[dict[str, Any]]) -> str:
    if not figures:
        return ""
    first = figures[0]
    if "delay" in first:
        shifts = [f["delay"]["median_shift_ms"] for f in figures]
        intervals = [f["delay"]["interval_ms"] for f in figures]
        within = sum(bool(f["delay"]["within_1ms_plus_interval"]) for f in figures)
        return (f"median shift {', '.join(f'{s:g}' for s in shifts)} ms for 30 ms added (intervals "
                f"{'; '.join(f'[{a:g}, {b:g}]' for a, b in intervals)}); 30 ms within 1 ms of the "
                f"interval: {within} of {len(figures)} runs")
    if "overload" in first:
        parts = []
        for f in figures:
            mb = f["overload"]["worker_rss_mb"]
            load = f["overload"]
            parts.append(f"capacity {load['capacity_per_s']}/s, offered {load['offered_per_s']}/s, "
                         f"worker RSS {mb['first_steady']} -> {mb['last']} MB")
        return "; ".join(parts)
    if "resume" in first:
        parts = [", ".join(f"{k} {v}" for k, v in f["resume"].items()
                           if k not in ("first_run_error", "first_run_stderr_tail"))
                 for f in figures]
        return "; ".join(parts)
    if "orphan_workers_ran_on_s" in first:
        return "orphaned workers stopped after " + ", ".join(
            f"{f['orphan_workers_ran_on_s']} s" for f in figures) + "; " + _gaps_text(figures)
    if "stopped_after_s" in first:
        stops = ", ".join(f"{f['stopped_after_s']} s" for f in figures)
        return f"stopped after {stops} of a 20.5 s run; {_gaps_text(figures)}"
    return ""


def _gaps_text(figures: list[dict[str, Any]]) -> str:
    return "gaps below the last record: " + ", ".join(str(f.get("gaps_before_stop", "?")) for f in figures)


def _exits(line: dict[str, Any]) -> str:
    counts = line.get("exit_counts") or {str(code): None for code in line["exit_codes"]}
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{code} x{n}" if n else code for code, n in counts.items())


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Reliability under faults",
        "",
        f"Measured {meta['created_at']} on {meta['machine']['cpus']} shared CPUs (load average "
        f"{meta['machine']['loadavg_before']} before, {meta['machine']['loadavg_after']} after; other work "
        f"{meta['other_work']['other_cpu_percent_mean']} % of one CPU on average, TorchServe included as it "
        f"runs detached; busy: {meta['other_work']['busy']}), "
        f"{meta['runs']} run(s) per row, by `python benchmarks/reliability.py` "
        f"({'under /work/bin/quiet' if meta['quiet'] else 'beside other work'}). TorchServe, small model "
        "(64 x 1,024) unless the model column says full (64 x 262,144), on a namespace host across a veth "
        "link. Expected = arrivals of the seeded schedule; lost = scheduled requests without a record "
        "(where the fault stops the run by design, kill -9 and a full disk, the schedule past the stop is "
        "never sent: lost reads 'stopped', and the figure counts the gaps below the last record, requests "
        "in flight or unflushed at the stop). Exit: code x runs; a run refused before the load (exit 2) has "
        "no schedule, so adds nothing to expected or found.",
        "",
        "| fault | protocol | model | runs | exit | expected | found | lost | dup "
        "| ok / timeout / error / dropped | errors recorded (count) | run's own error | figure |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in table:
        s = line["statuses"]
        statuses = " / ".join(str(s.get(k, 0)) for k in ("ok", "timeout", "error", "dropped"))
        errors = "; ".join(f"{text} ({n})" for text, n in line["errors"].items()) or "-"
        messages = "; ".join(line["messages"]) or "-"
        lines.append(
            f"| {line['fault']} | {line['protocol']} | {line['model']} | {line['runs']} | "
            f"{_exits(line)} | {line['records_expected']} | "
            f"{line['records_found']} | "
            f"{'stopped' if line.get('stopped_by_fault') else line['lost']} | "
            f"{line['duplicated']} | {statuses} | {errors.replace('|', '/')} | "
            f"{messages.replace('|', '/')} | {_figure_text(line['figures']).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated fault names (" +
                        ", ".join([*SMALL_FAULTS, *FULL_FAULTS]) + ")")
    parser.add_argument("--full-size", action="store_true", help="add the full-size model's rows")
    parser.add_argument("--artifacts-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "inferload-reliability")
    parser.add_argument("--out", type=Path, default=RESULTS / "reliability.json")
    parser.add_argument("--quiet-run", action="store_true",
                        help="say in the table it ran under /work/bin/quiet")
    args = parser.parse_args(argv)
    reason = skip_reason() or missing_tools()
    if reason:
        raise SystemExit(f"cannot inject the faults here: {reason}")
    wanted = set(args.only.split(",")) if args.only else None
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    rows: list[Row] = []
    prefix = f"{default_prefix()}b"
    other = OtherWork()
    other.__enter__()
    plans = [(SMALL, SMALL_FAULTS)] + ([(FULL, FULL_FAULTS)] if args.full_size else [])
    for index, (size, faults) in enumerate(plans):
        chosen = {name: plan for name, plan in faults.items() if wanted is None or name in wanted}
        if not chosen:
            continue
        artifacts = export(size, args.artifacts_root)
        with server_host(artifacts, prefix, index) as server:
            for name, (fault, protocols) in chosen.items():
                for protocol in protocols:
                    for run in range(args.runs):
                        with tempfile.TemporaryDirectory(prefix=f"reliability-{name}-") as work:
                            row = fault(server, protocol, run, Path(work))
                        rows.append(row)
                        print(json.dumps(row.__dict__), flush=True)
    other.__exit__()
    meta = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # TorchServe runs detached (serve up in the namespace), so its CPU counts as other work too
        "other_work": other.result(),
        "runs": args.runs,
        "quiet": args.quiet_run,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_before": loadavg_before,
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
    }
    table = summarize(rows)
    document = {"schema": "inferload.benchmark.reliability", "schema_version": 1, **meta, "table": table,
                "runs_detail": [row.__dict__ for row in rows]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(table, meta))
    print(markdown(table, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
