"""One load process: `python -m loadtest._worker --stream K --streams N --out DIR` (settings on stdin).

Why a subprocess: gevent monkey-patching must happen before anything else is imported, and the
load path must never carry TensorFlow or torch. Protocol with the parent (_runner.py), one JSON
object per line: the parent writes the settings, the worker builds its payload pool and answers
{"event": "ready"}; the parent then writes {"start_ns": ...} (a common start on the machine-wide
monotonic clock); the worker reports {"event": "progress", ...} twice a second and
{"event": "done", ...} at the end. SIGTERM/SIGINT stop the schedule and drain in-flight requests.
"""

import gevent  # noqa: I001 - configured and patched before anything else is imported
from gevent import monkey

gevent.config.track_greenlet_tree = False  # no spawning-stack capture per request greenlet

# Everything but threads: gRPC runs grpc.aio on a real thread of its own (_grpc_thread.py), which
# costs less CPU per call than grpcio's gevent integration (the engine's fallback alarm is a real thread too).
monkey.patch_all(thread=False)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

from ._arrivals import make_arrivals, stream_seed  # noqa: E402
from ._early_stop import EarlyStopJudge, judge  # noqa: E402
from ._engine import Engine, StopWhen  # noqa: E402
from ._payloads import build_pool, repeat_choice  # noqa: E402
from ._safeguards import GuardedWriter, watch_parent  # noqa: E402
from ._schema import RequestRecord, RunHeader, rewrite_header, stream_path  # noqa: E402
from ._security import RefusalWatch  # noqa: E402
from ._settings import LoadSettings  # noqa: E402
from ._transports import make_transport  # noqa: E402
from ._versions import versions  # noqa: E402

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
    transport = make_transport(settings)
    transport.prime()
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
    engine: Engine | None = None

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
            offload=gevent.get_hub().threadpool.apply,  # a big partial sort must not hold up the schedule
        )
        minimum_end = measure_end
        stop_when = StopWhen(after_ns=minimum_end, ready=early)
        observe = early.observe

        def sink(record: RequestRecord) -> None:
            watched(record)
            observe(record)

        cap_s = max(settings.early_stop.max_duration_s, settings.duration_s)  # a search step may be longer
        measure_end = measure_start + round(cap_s * 1e9)
    engine = Engine(
        transport=transport,
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
        gevent.signal_handler(signum, engine.stop)
    watch_parent()  # a killed parent (stdin's EOF) stops the run as SIGTERM does
    if writer.failure is not None:  # not even the header could be written
        engine.stop()

    def report_progress() -> None:
        while True:
            gevent.sleep(PROGRESS_INTERVAL_S)
            writer.flush_if_due()
            _emit("progress", **engine.counters.as_dict())

    # Everything built so far lives for the whole run: out of the collector's way, so the per-request
    # garbage collections stop walking it (they showed up at ~8 % of a full-size run's samples).
    gc.collect()
    gc.freeze()
    process = psutil.Process()
    cpu_before = process.cpu_times()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    wall_from_ns = max(time.monotonic_ns(), start_ns)  # CPU is ~idle while waiting for the start
    reporter = gevent.spawn(report_progress)
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
        reporter.kill()
        engine.close()
        writer.close()
        transport.close()
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
