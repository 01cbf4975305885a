"""One load process: `python -m loadtest._worker --stream K --streams N --out DIR` (settings on stdin).

Why a subprocess: the load path must never carry TensorFlow or torch, and the engine owns the
process's one thread: its asyncio loop (`_aio_engine`) runs the schedule, the transport and the
records. Protocol with the parent (_runner.py), one JSON
object per line: the parent writes the settings, the worker builds its payload pool and answers
{"event": "ready"}; the parent then writes {"start_ns": ...} (a common start on the machine-wide
monotonic clock); the worker reports {"event": "progress", ...} twice a second and
{"event": "done", ...} at the end. SIGTERM/SIGINT stop the schedule and drain in-flight requests.
"""

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from ._aio_engine import AioEngine, new_loop
from ._aio_transports import make_aio_transport
from ._arrivals import make_arrivals, stream_seed
from ._core import StopWhen
from ._early_stop import EarlyStopJudge, judge
from ._payloads import build_pool, repeat_choice
from ._safeguards import GuardedWriter, watch_parent
from ._schema import RequestRecord, RunHeader, rewrite_header, stream_path
from ._security import RefusalWatch
from ._settings import LoadSettings
from ._spec import transport_spec
from ._timerfd import tighten_timer_slack
from ._versions import versions

PROGRESS_INTERVAL_S = 0.5
DRAIN_GRACE_ON_STOP_S = 2.0
EXIT_RESULTS_NOT_WRITTEN = 3  # the records could not be written (a full disk): `done` says where


def _emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def _read_message() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("load worker: the parent closed stdin before starting the run")
    message: dict[str, Any] = json.loads(line)
    return message


def run_worker(stream: int, streams: int, out_dir: Path) -> int:
    settings = LoadSettings.model_validate(_read_message()["settings"])
    pool = build_pool(settings)
    tighten_timer_slack()  # the pacer's timerfd fires within a microsecond, not the default 50
    loop = new_loop()
    asyncio.set_event_loop(loop)
    transport = make_aio_transport(transport_spec(settings), loop)
    loop.run_until_complete(transport.prime())
    if settings.early_stop is not None:
        judge([1.0], 0, settings.early_stop.percentile)  # its imports (scipy) now, not during the run
    _emit(
        "ready",
        pool=len(pool),
        encode_s=pool.encode_s,
        body_bytes=[len(b) for b in pool.bodies],
        cpus=sorted(os.sched_getaffinity(0)),  # what the process really runs on (taskset when pinned)
    )

    start_ns = int(_read_message()["start_ns"])
    measure_start = start_ns + round(settings.warmup_s * 1e9)
    measure_end = measure_start + round(settings.duration_s * 1e9)
    header = RunHeader(
        run=settings.run,
        stream=stream,
        settings={**settings.resolved(), "streams": streams},
        measure_start_ns=measure_start,
        measure_end_ns=measure_end,
        server_kind=settings.server_kind,
        versions=versions(),
    )
    engine: AioEngine | None = None

    def stop_load() -> None:  # a failed write or refused credentials end the run, keeping the records
        if engine is not None:
            engine.stop()

    writer = GuardedWriter(stream_path(out_dir, stream), header, on_failure=stop_load)
    refusals = RefusalWatch(settings.url)
    refused: list[str] = []

    def watched(record: RequestRecord) -> None:
        writer.add(record)
        reason = refusals.add(record.protocol, record.status, record.code, record.error)
        if reason is not None:  # credentials refused mid-run: stop the schedule, keep the records
            refused.append(reason)
            stop_load()

    sink = watched
    stop_when = early = None
    if settings.early_stop is not None:  # processes == 1 (LoadSettings): this stream is the whole run
        early = EarlyStopJudge(
            settings.early_stop,
            measure_start_ns=measure_start,
            in_flight=lambda: engine.in_flight_scheduled() if engine is not None else [],
            # judged on the loop, about once a second: a partial sort of the window's latencies (the
            # arrays it reads grow on this thread, so no other thread may look at them meanwhile)
        )
        minimum_end = measure_end
        stop_when = StopWhen(after_ns=minimum_end, ready=early)
        observe = early.observe

        def sink(record: RequestRecord) -> None:
            watched(record)
            observe(record)

        cap_s = max(settings.early_stop.max_duration_s, settings.duration_s)  # a search step may be longer
        measure_end = measure_start + round(cap_s * 1e9)
    engine = AioEngine(
        transport=transport,
        loop=loop,
        bodies=pool.bodies,
        sink=sink,
        server=settings.server,
        protocol=settings.protocol,
        batch=settings.batch,
        stream=stream,
        payload_seed=stream_seed(settings.payload_seed, stream),
        max_in_flight=settings.max_in_flight,
        choose=repeat_choice(settings, pool.bodies, stream),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, engine.stop)
    watch_parent()  # a killed parent (stdin's EOF) stops the run as SIGTERM does
    if writer.failure is not None:  # not even the header could be written
        engine.stop()

    def report_progress() -> None:
        writer.flush_if_due()
        _emit("progress", **engine.counters.as_dict())
        reporter[0] = loop.call_later(PROGRESS_INTERVAL_S, report_progress)

    # Everything built so far lives for the whole run: out of the collector's way, so the per-request
    # garbage collections stop walking it (they showed up at ~8 % of a full-size run's samples).
    gc.collect()
    gc.freeze()
    process = psutil.Process()
    cpu_before = process.cpu_times()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    wall_from_ns = max(time.monotonic_ns(), start_ns)  # CPU is ~idle while waiting for the start
    reporter = [loop.call_later(PROGRESS_INTERVAL_S, report_progress)]
    try:
        if settings.mode == "open":
            rate = settings.rate_per_process()
            assert rate is not None
            arrivals = make_arrivals(settings.arrival, rate, stream_seed(settings.seed, stream))
            engine.run_open(arrivals, start_ns, measure_end, stop_when=stop_when)
        else:
            concurrency = settings.concurrency or 1
            share = concurrency // streams + (1 if stream < concurrency % streams else 0)
            if share:
                engine.run_closed(share, start_ns, measure_end, stop_when=stop_when)
        grace = DRAIN_GRACE_ON_STOP_S if engine.stopping else settings.timeout_s + 1.0
        interrupted = engine.drain(grace)
    finally:
        reporter[0].cancel()
        engine.close()
        writer.close()
        loop.run_until_complete(transport.close())
        loop.close()
    early_stop = None
    if early is not None and writer.failure is None:
        # the window the run really had: the header said the minimum until the end was known
        # (interrupted: at least the minimum window, as a run without the rule keeps)
        measured_end = min(engine.end_ns, max(time.monotonic_ns(), minimum_end))
        rewrite_header(stream_path(out_dir, stream), replace(header, measure_end_ns=measured_end))
        early_stop = early.outcome(
            min_duration_s=settings.duration_s,
            measured_s=(measured_end - measure_start) / 1e9,
            ended_early=engine.ended_early,
            interrupted=engine.stopping,
        ).model_dump()
    cpu_after = process.cpu_times()
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    wall_s = max((time.monotonic_ns() - wall_from_ns) / 1e9, 1e-9)
    busy_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    _emit(
        "done",
        stream=stream,
        records=writer.count,
        interrupted=interrupted,
        stopped=engine.stopping,
        cpu_s=busy_s,
        cpu_user_s=cpu_after.user - cpu_before.user,
        cpu_system_s=cpu_after.system - cpu_before.system,
        # what the CPU went on (benchmarks/generator_cpu.py): page faults and context switches, all threads
        minor_faults=usage_after.ru_minflt - usage_before.ru_minflt,
        context_switches=(usage_after.ru_nvcsw + usage_after.ru_nivcsw)
        - (usage_before.ru_nvcsw + usage_before.ru_nivcsw),
        wall_s=wall_s,
        cpu_percent=100.0 * busy_s / wall_s,
        counters=engine.counters.as_dict(),
        early_stop=early_stop,
        refused=refused[0] if refused else None,
        write_error=writer.failure,  # the parent says it: our own log may be on that full disk too
        unwritten=writer.unwritten,
    )
    return 0 if writer.failure is None else EXIT_RESULTS_NOT_WRITTEN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest._worker", description=__doc__)
    parser.add_argument("--stream", type=int, required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    return run_worker(args.stream, args.streams, args.out)


if __name__ == "__main__":
    sys.exit(main())
