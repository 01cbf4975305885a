"""run_load: the headless entry point. Runs the load in `processes` worker subprocesses.

Why subprocesses even for one: each worker's one event loop and the no-TensorFlow rule then hold no
matter who calls (the experiment runner imports TensorFlow). Workers build their payloads first
and report ready; all then start at one common instant on the machine-wide monotonic clock, each
with rate/N and its own seed stream. SIGINT/SIGTERM are forwarded; records so far stay on disk,
load.json is still written, and KeyboardInterrupt is raised afterwards so callers stop too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from ._early_stop import EarlyStopOutcome
from ._health import preflight
from ._payloads import EncodingRecord, write_payloads_json
from ._safeguards import describe_write_failure
from ._schema import read_run
from ._settings import LoadSettings
from ._summary import LoadSummary, summarize

READY_TIMEOUT_S = 300.0  # building a large JSON pool takes a while
START_DELAY_S = 0.2  # room for every worker to read its start message before the first arrival


class LoadError(RuntimeError):
    """The load could not run (a worker failed to start or crashed)."""


class ResultsWriteError(LoadError):
    """The results could not be written (a full or read-only disk): the run was stopped at once;
    what was written before stays on disk. `failure`: the file and the reason."""

    def __init__(self, failure: str, out_dir: Path) -> None:
        super().__init__(
            f"could not write the results: {failure}. The load was stopped at once; the records written "
            f"before are kept in {out_dir} (a torn last line is skipped when read). Free space there (or "
            "give another output directory) and run again"
        )
        self.failure = failure


@dataclass
class _WorkerState:
    process: subprocess.Popen[str]
    log_path: Path
    ready: threading.Event = field(default_factory=threading.Event)
    ready_info: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, int] = field(default_factory=dict)
    done: dict[str, Any] = field(default_factory=dict)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _read_events(state: _WorkerState) -> None:
    stdout = state.process.stdout
    assert stdout is not None
    for line in stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = event.pop("event", None)
        if kind == "ready":
            state.ready_info = event
            state.ready.set()
        elif kind == "progress":
            state.progress = event
        elif kind == "done":
            state.done = event
    state.ready.set()  # EOF: wake anyone waiting (the process died or finished)


def _send(stdin: IO[str] | None, message: dict[str, Any]) -> None:
    assert stdin is not None
    stdin.write(json.dumps(message) + "\n")
    stdin.flush()


@contextmanager
def _forward_signals(workers: list[_WorkerState], stopped: list[int]) -> Iterator[None]:
    """While the load runs, SIGINT/SIGTERM stop the workers cleanly instead of killing us."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def check_cpus(settings: LoadSettings) -> None:
    """Refuse, before any load, a CPU set this machine (or our own affinity) does not offer."""
    if settings.cpus is None:
        return
    have = sorted(os.sched_getaffinity(0))
    missing = sorted(set(settings.cpus) - set(have))
    if missing:
        raise LoadError(
            f"load CPU set {list(settings.cpus)} names CPU(s) {missing} that this machine does not offer "
            f"(available: {have}): choose load CPUs among those"
        )
    if shutil.which("taskset") is None:
        raise LoadError("pinning load processes needs taskset (util-linux): install it, or leave cpus unset")


def _pinned(argv: list[str], cpus: tuple[int, ...] | None) -> list[str]:
    """Behind `taskset --cpu-list` when pinned: the process and every thread it starts stay there."""
    if cpus is None:
        return argv
    taskset = shutil.which("taskset")
    assert taskset is not None  # check_cpus ran first
    return [taskset, "--cpu-list", ",".join(str(c) for c in cpus), *argv]


def _spawn_workers(settings: LoadSettings, out_dir: Path, stream_offset: int = 0) -> list[_WorkerState]:
    workers = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for stream in range(stream_offset, stream_offset + settings.processes):
        log_path = out_dir / f"worker.{stream}.log"
        log = open(log_path, "w")  # noqa: SIM115 - owned by the child from here on
        argv = _pinned(
            [
                sys.executable,
                "-m",
                "loadtest._worker",
                "--stream",
                str(stream),
                "--streams",
                str(settings.processes),
                "--out",
                str(out_dir),
            ],
            settings.cpus,
        )
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        log.close()
        state = _WorkerState(process=process, log_path=log_path)
        threading.Thread(target=_read_events, args=(state,), daemon=True).start()
        workers.append(state)
        try:
            _send(process.stdin, {"settings": settings.model_dump(mode="json")})
        except BrokenPipeError:  # it died starting up: say why, not where the pipe broke
            _terminate(workers)
            raise LoadError(
                f"load worker {stream} exited (status {process.returncode}) before it read its settings "
                f"(see {log_path}):\n{state.log_tail()}"
            ) from None
    return workers


def _wait_ready(workers: list[_WorkerState]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for stream, worker in enumerate(workers):
        worker.ready.wait(max(0.0, deadline - time.monotonic()))
        if not worker.ready_info:
            _terminate(workers)
            raise LoadError(
                f"load worker {stream} failed before the run started (see {worker.log_path}):\n"
                f"{worker.log_tail()}"
            )


def _terminate(workers: list[_WorkerState]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait()


def _progress_loop(settings: LoadSettings, workers: list[_WorkerState], start_ns: int, show: bool) -> None:
    total_s = settings.warmup_s + settings.duration_s
    if settings.early_stop is not None:  # at most this long; the bar completes when the rule stops it
        total_s = settings.warmup_s + max(settings.early_stop.max_duration_s, settings.duration_s)
    if not show:
        for worker in workers:
            worker.process.wait()
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
    )
    label = f"{settings.server} {settings.protocol} " + (
        f"{settings.rate:g}/s" if settings.mode == "open" else f"c={settings.concurrency}"
    )
    with Progress(*columns, transient=False, refresh_per_second=4) as progress:
        task = progress.add_task(label, total=total_s, stats="")
        while any(w.process.poll() is None for w in workers):
            elapsed = max(0.0, (time.monotonic_ns() - start_ns) / 1e9)
            totals: dict[str, int] = {}
            for worker in workers:
                for key, value in worker.progress.items():
                    totals[key] = totals.get(key, 0) + value
            stats = (
                f"sent {totals.get('sent', 0)}  errors {totals.get('errors', 0)}  "
                f"dropped {totals.get('dropped', 0)}  in-flight {totals.get('in_flight', 0)}"
            )
            progress.update(task, completed=min(elapsed, total_s), stats=stats)
            time.sleep(0.25)
        progress.update(task, completed=total_s)


def _encoding_records(settings: LoadSettings, ready: dict[str, Any]) -> list[EncodingRecord]:
    times = sorted(ready.get("encode_s") or [0.0])
    sizes = ready.get("body_bytes") or [0]
    return [
        EncodingRecord(
            server=settings.server,
            protocol=settings.protocol,
            batch=settings.batch,
            features=settings.features,
            body_bytes=int(sizes[0]),
            encode_ms_median=times[len(times) // 2] * 1e3,
            encode_ms_min=times[0] * 1e3,
            repeats=len(times),
            encoder="orjson" if settings.protocol != "grpc" else "protobuf",
        )
    ]


StartGate = Callable[[], int]
"""Called once every local load process is ready; returns the common start (local monotonic ns)."""


def run_load(
    settings: LoadSettings,
    out_dir: str | Path,
    progress: bool = True,
    *,
    stream_offset: int = 0,
    start_gate: StartGate | None = None,
) -> LoadSummary:
    """Run one load (open or closed loop) and write requests.<k>.jsonl, payloads.json, load.json.

    Raises TargetError before any load if nothing answers at the target or it serves another
    model or input width (TargetUnreachable / TargetMismatch), LoadError if a
    worker cannot start, and KeyboardInterrupt after a clean stop on SIGINT/SIGTERM.
    `stream_offset` and `start_gate` let several hosts share one run (loadtest/_cluster.py): local
    streams are numbered from the offset, and the gate says when everyone starts.
    """
    out_dir = Path(out_dir)
    check_cpus(settings)
    preflight(settings)  # before anything is written: a refused target leaves no run directory
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = _spawn_workers(settings, out_dir, stream_offset)
    stopped: list[int] = []
    try:
        with _forward_signals(workers, stopped):
            try:
                _wait_ready(workers)
            except LoadError:
                if stopped:  # stopped while workers were still building their payloads
                    raise KeyboardInterrupt from None
                raise
            if start_gate is None:
                start_ns = time.monotonic_ns() + round(START_DELAY_S * 1e9)
            else:
                start_ns = start_gate()
            for worker in workers:
                _send(worker.process.stdin, {"start_ns": start_ns})
            _progress_loop(settings, workers, start_ns, progress)
            for worker in workers:
                worker.process.wait()
    except BaseException:
        _terminate(workers)
        raise
    time.sleep(0.05)  # let the reader threads take the last lines
    failed = [(k, w) for k, w in enumerate(workers) if w.process.returncode != 0 or not w.done]
    not_written = [w.done["write_error"] for w in workers if w.done.get("write_error")]
    try:
        write_payloads_json(out_dir / "payloads.json", _encoding_records(settings, workers[0].ready_info))
    except OSError as exc:
        raise ResultsWriteError(not_written[0] if not_written else
                                describe_write_failure(out_dir / "payloads.json", exc), out_dir) from exc
    if not_written:  # load.json would only say "interrupted"; the error says why, and where
        raise ResultsWriteError(not_written[0], out_dir)
    interrupted = bool(stopped) or any(w.done.get("stopped") for w in workers)
    data = read_run(out_dir)
    early = workers[0].done.get("early_stop")  # one process when the rule is on (LoadSettings)
    summary = summarize(
        settings,
        data,
        cpu_percent=[float(w.done.get("cpu_percent", 0.0)) for w in workers],
        interrupted=interrupted or bool(failed),
        cpus_applied=[list(w.ready_info.get("cpus") or []) for w in workers],
        early_stop=EarlyStopOutcome.model_validate(early) if early else None,
    )
    try:
        summary.write(out_dir / "load.json")
    except OSError as exc:
        raise ResultsWriteError(describe_write_failure(out_dir / "load.json", exc), out_dir) from exc
    refused = next((w.done["refused"] for w in workers if w.done.get("refused")), None)
    if refused:
        raise LoadError(f"{refused} (records in {out_dir})")
    if failed:
        k, worker = failed[0]
        raise LoadError(
            f"load worker {k} exited with status {worker.process.returncode} (see {worker.log_path}):\n"
            f"{worker.log_tail()}"
        )
    if stopped:
        raise KeyboardInterrupt
    return summary
