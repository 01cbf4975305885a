"""The server's own view of one run: deltas of its cumulative counters over the measuring window.

Read from `server_metrics.jsonl` through its owner's reader (`serving.metrics_file.read_server_samples`).
Counters are cumulative, so a window's figures are differences between two samples: the last one at
or before the window's start and the first one at or after its end (the bracket). Every figure is a
*mean* per request (delta of a time sum / delta of a count): percentiles such as p99 cannot be
decomposed this way.

What each server exports, and what we make of it (means per request, ms):
- TF Serving / tfs-compat: queue = `:tensorflow:serving:batching_session:queuing_latency` (batching
  only); inference = `:tensorflow:serving:runtime_latency` (the session run) less the queue, since
  with batching the run waits in the queue; server request time = `:tensorflow:serving:request_latency`
  of this entry point (REST / GRPC), ok requests only, also the server's request count.
- TorchServe over REST: queue = `ts_queue_latency_microseconds` / `ts_inference_requests_total`;
  inference = (`ts_inference_latency_microseconds` − queue) / requests, the backend: worker IPC +
  handler; server request time = `ts_inference_latency_microseconds` / requests, from the frontend's
  job to the response.
- TorchServe over gRPC: counted, not timed: TorchServe 0.12 adds to its latency counters in REST
  jobs only (`RestJob`), so queue and inference are not exported.
- Triton (any protocol; its counters are per model, not per endpoint): requests =
  `nv_inference_request_success`; queue = `nv_inference_queue_duration_us` / requests; inference =
  `nv_inference_compute_infer_duration_us` / requests executed (requests less response-cache hits:
  a hit runs nothing), the model's own execute (the Python backend's stub); compute input and output
  (`nv_inference_compute_input/output_duration_us`: the backend's tensor copies) are figures of their
  own; server request time = `nv_inference_request_duration_us` / requests; cache hits and misses =
  `nv_cache_num_hits_per_model` / `nv_cache_num_misses_per_model` (with the response cache on).
  With dynamic batching every request of a merged batch is charged the batch's whole compute time.

CPU-seconds are the delta of the cumulative CPU time of the server's process tree (psutil) or
container (cgroup) over their own bracket, and per ok request they divide by the `ok` responses
the client received between the same two samples, so numerator and denominator cover one interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from inferload_formats import TFSERVING_KINDS, strict_fields
from serving.metrics_file import ServerSample

_TF = ":tensorflow:serving:"
_TS_QUEUE = "ts_queue_latency_microseconds_total"
_TS_INFERENCE = "ts_inference_latency_microseconds_total"
_TS_REQUESTS = "ts_inference_requests_total"
# Triton's counters, as the Prometheus parser names their samples (it adds `_total` to a counter's)
_NV_REQUESTS = "nv_inference_request_success_total"
_NV_QUEUE = "nv_inference_queue_duration_us_total"
_NV_INPUT = "nv_inference_compute_input_duration_us_total"
_NV_INFER = "nv_inference_compute_infer_duration_us_total"
_NV_OUTPUT = "nv_inference_compute_output_duration_us_total"
_NV_REQUEST = "nv_inference_request_duration_us_total"
_NV_EXECUTIONS = "nv_inference_exec_count_total"
_NV_CACHE_HITS = "nv_cache_num_hits_per_model_total"
_NV_CACHE_MISSES = "nv_cache_num_misses_per_model_total"
TRITON_KINDS = ("tritonserver", "pytriton")


@strict_fields
@dataclass(frozen=True)
class ServerSide:
    """One server's view of one run's window; None where the server does not export a figure."""

    server: str
    kind: str
    cpu_source: str  # psutil | cgroup | docker-stats | none
    metrics_source: str  # the Prometheus families the figures came from, or why there are none
    span_s: float | None  # seconds between the two samples that bracket the window (metrics)
    server_requests: float | None  # predict requests the server counted between them
    client_ok: int | None  # ok responses the client received between the same two samples
    queue_ms: float | None  # mean time a request waited in the server's queue
    inference_ms: float | None  # mean time of the model run (TorchServe: backend incl. worker IPC)
    request_ms: float | None  # mean time the server itself accounts to a request
    cpu_seconds: float | None  # server CPU time between the CPU bracket's samples
    cpu_span_s: float | None
    cpu_seconds_per_ok: float | None
    notes: tuple[str, ...] = ()
    # Triton only (None elsewhere): its split of the backend's time, executions and response cache
    compute_input_ms: float | None = None
    compute_output_ms: float | None = None
    executions: float | None = None  # model executions: fewer than requests when batches merged
    cache_hits: float | None = None
    cache_misses: float | None = None


def bracket(
    samples: Sequence[ServerSample], window: tuple[int, int], usable: Callable[[ServerSample], bool]
) -> tuple[ServerSample, ServerSample, list[str]] | None:
    """The last usable sample at or before the window's start and the first at or after its end.

    Where the samples do not reach that far, the nearest usable ones inside the window are taken and
    a note says the figures cover less than the window. None without two distinct usable samples.
    """
    start, end = window
    ordered = sorted((s for s in samples if usable(s)), key=lambda s: s.t_ns)
    if len(ordered) < 2:
        return None
    before = [s for s in ordered if s.t_ns <= start]
    after = [s for s in ordered if s.t_ns >= end]
    notes = []
    first = before[-1] if before else ordered[0]
    last = after[0] if after else ordered[-1]
    if not before:
        notes.append("the first sample came after the window began: figures cover less than the window")
    if not after:
        notes.append("the last sample came before the window ended: figures cover less than the window")
    if last.t_ns <= first.t_ns:
        return None
    return first, last, notes


def _delta(first: ServerSample, last: ServerSample, name: str, **labels: str) -> float | None:
    """Increase of a cumulative series between two samples; None if absent or it went back (restart)."""
    before, after = first.total(name, **labels), last.total(name, **labels)
    if after is None:
        return None
    delta = after - (before or 0.0)
    return delta if delta >= 0 else None


def _mean_ms(sum_us: float | None, count: float | None) -> float | None:
    if sum_us is None or not count:
        return None
    return sum_us / count / 1000.0


@dataclass(frozen=True)
class _Figures:
    source: str
    requests: float | None
    queue_ms: float | None
    inference_ms: float | None
    request_ms: float | None
    notes: tuple[str, ...]
    extra: dict[str, float | None] | None = None  # ServerSide's Triton-only fields


def tf_serving_figures(first: ServerSample, last: ServerSample, protocol: str) -> _Figures:
    entrypoint, api = ("GRPC", "Predict") if protocol == "grpc" else ("REST", "predict")
    labels = {"entrypoint": entrypoint, "API": api}
    requests = _delta(first, last, f"{_TF}request_latency_count", **labels)
    request_ms = _mean_ms(_delta(first, last, f"{_TF}request_latency_sum", **labels), requests)
    runtime_ms = _mean_ms(
        _delta(first, last, f"{_TF}runtime_latency_sum", API="Predict"),
        _delta(first, last, f"{_TF}runtime_latency_count", API="Predict"),
    )
    queue_ms = _mean_ms(
        _delta(first, last, f"{_TF}batching_session:queuing_latency_sum"),
        _delta(first, last, f"{_TF}batching_session:queuing_latency_count"),
    )
    notes = []
    inference_ms = runtime_ms
    if queue_ms is not None and runtime_ms is not None:
        inference_ms = max(0.0, runtime_ms - queue_ms)
        notes.append("inference = runtime_latency − queuing_latency (with batching the run includes it)")
    elif queue_ms is None:
        notes.append("no batching queue exported (batching off): requests run in the front end's threads")
    if requests is None:
        notes.append(f"no {_TF}request_latency for {entrypoint}: start TF Serving with the monitoring config")
    source = (
        f"Prometheus {_TF}request_latency{{entrypoint={entrypoint}}}, runtime_latency"
        + (", batching_session:queuing_latency" if queue_ms is not None else "")
    )
    return _Figures(source, requests, queue_ms, inference_ms, request_ms, tuple(notes))


def torchserve_figures(first: ServerSample, last: ServerSample, protocol: str) -> _Figures:
    requests = _delta(first, last, _TS_REQUESTS)
    if protocol == "grpc":
        return _Figures(
            f"Prometheus {_TS_REQUESTS} (count only)",
            requests,
            None,
            None,
            None,
            ("TorchServe 0.12 times REST requests only (its latency counters are updated in RestJob):"
             " gRPC requests are counted, not timed",),
        )
    queue_us = _delta(first, last, _TS_QUEUE)
    total_us = _delta(first, last, _TS_INFERENCE)
    backend_us = total_us - queue_us if total_us is not None and queue_us is not None else None
    notes = ["inference = backend time (worker IPC + handler), ts_inference − ts_queue latency"]
    return _Figures(
        "Prometheus ts_queue_latency_microseconds, ts_inference_latency_microseconds, "
        "ts_inference_requests_total",
        requests,
        _mean_ms(queue_us, requests),
        _mean_ms(backend_us, requests),
        _mean_ms(total_us, requests),
        tuple(notes),
    )


def triton_figures(first: ServerSample, last: ServerSample, model: str = "linear") -> _Figures:
    """Triton's per-model counters over the bracket (they are per model, whatever the protocol)."""
    labels = {"model": model}
    requests = _delta(first, last, _NV_REQUESTS, **labels)
    hits = _delta(first, last, _NV_CACHE_HITS, **labels)
    misses = _delta(first, last, _NV_CACHE_MISSES, **labels)
    executed = requests - hits if requests is not None and hits is not None else requests
    notes = ["inference = nv_inference_compute_infer_duration_us per request executed (the Python backend's "
             "execute); compute input/output (tensor copies) apart"]
    executions = _delta(first, last, _NV_EXECUTIONS, **labels)
    if executions is not None and requests and executions < requests:
        notes.append(f"dynamic batching merged {requests:.0f} requests into {executions:.0f} executions: "
                     "each request is charged its batch's whole compute time")
    if hits is not None:
        notes.append(f"response cache: {hits:.0f} hits, {misses or 0:.0f} misses (a hit runs no model)")
    source = ("Prometheus nv_inference_request_success, nv_inference_queue_duration_us, "
              "nv_inference_compute_{input,infer,output}_duration_us, nv_inference_request_duration_us"
              + (", nv_cache_num_{hits,misses}_per_model" if hits is not None else ""))
    return _Figures(
        source,
        requests,
        _mean_ms(_delta(first, last, _NV_QUEUE, **labels), requests),
        _mean_ms(_delta(first, last, _NV_INFER, **labels), executed),
        _mean_ms(_delta(first, last, _NV_REQUEST, **labels), requests),
        tuple(notes),
        extra={
            "compute_input_ms": _mean_ms(_delta(first, last, _NV_INPUT, **labels), executed),
            "compute_output_ms": _mean_ms(_delta(first, last, _NV_OUTPUT, **labels), executed),
            "executions": executions,
            "cache_hits": hits,
            "cache_misses": misses,
        },
    )


def _exported_by(sample: ServerSample) -> str | None:
    """Whose families a scrape holds (an external server's kind may be unknown; its metrics tell)."""
    if sample.kind in TFSERVING_KINDS or any(key.startswith(_TF) for key in sample.metrics):
        return "tfserving"
    if sample.kind == "torchserve" or any(key.startswith(_TS_REQUESTS) for key in sample.metrics):
        return "torchserve"
    if sample.kind in TRITON_KINDS or any(key.startswith(_NV_REQUESTS) for key in sample.metrics):
        return "triton"
    return None


def _ok_done_between(ok_done_ns: np.ndarray, first: ServerSample, last: ServerSample) -> int:
    return int(((ok_done_ns > first.t_ns) & (ok_done_ns <= last.t_ns)).sum())


def server_side(
    samples: Sequence[ServerSample],
    window: tuple[int, int],
    ok_done_ns: np.ndarray,
    server: str,
    protocol: str,
) -> ServerSide | None:
    """The figures of `server` over `window` (None when it has no samples at all)."""
    mine = [s for s in samples if s.server == server]
    if not mine:
        return None
    kind, cpu_source = mine[-1].kind, mine[-1].source
    notes: list[str] = []
    figures = _Figures("none: the server exported no metrics", None, None, None, None, ())
    span_s = client_ok = None
    metrics_bracket = bracket(mine, window, lambda s: bool(s.metrics))
    if metrics_bracket is None:
        notes.append("fewer than two scrapes of the server's metrics around the window")
    else:
        first, last, edge_notes = metrics_bracket
        notes.extend(edge_notes)
        exported = _exported_by(last)
        if exported == "tfserving":
            figures = tf_serving_figures(first, last, protocol)
        elif exported == "torchserve":
            figures = torchserve_figures(first, last, protocol)
        elif exported == "triton":
            figures = triton_figures(first, last)
        else:
            figures = _Figures(
                f"none: the {kind} server exports none of TF Serving's, TorchServe's or Triton's families",
                None, None, None, None, (),
            )
        span_s = (last.t_ns - first.t_ns) / 1e9
        client_ok = _ok_done_between(ok_done_ns, first, last)
    cpu_seconds = cpu_span_s = per_ok = None
    cpu_bracket = bracket(mine, window, lambda s: s.cpu_seconds is not None)
    if cpu_bracket is not None:
        first, last, _ = cpu_bracket
        cpu_seconds = (last.cpu_seconds or 0.0) - (first.cpu_seconds or 0.0)
        cpu_span_s = (last.t_ns - first.t_ns) / 1e9
        ok = _ok_done_between(ok_done_ns, first, last)
        if cpu_seconds < 0:
            notes.append("CPU time went back between samples (a server process restarted): no CPU figure")
            cpu_seconds = None
        elif ok:
            per_ok = cpu_seconds / ok
    elif cpu_source == "none":
        notes.append("no CPU source for this server (external target): metrics only")
    elif cpu_source == "docker-stats":
        notes.append("docker stats gives CPU percent only: no CPU-seconds")
    return ServerSide(
        server=server,
        kind=kind,
        cpu_source=cpu_source,
        metrics_source=figures.source,
        span_s=span_s,
        server_requests=figures.requests,
        client_ok=client_ok,
        queue_ms=figures.queue_ms,
        inference_ms=figures.inference_ms,
        request_ms=figures.request_ms,
        cpu_seconds=cpu_seconds,
        cpu_span_s=cpu_span_s,
        cpu_seconds_per_ok=per_ok,
        notes=tuple(notes) + figures.notes,
        **(figures.extra or {}),
    )


def server_side_of_run(
    samples: Sequence[ServerSample], window: tuple[int, int], records: pd.DataFrame, server: str,
    protocol: str,
) -> ServerSide | None:
    """`server_side` for one run's samples and request records (None without server_metrics.jsonl)."""
    if not samples:
        return None
    ok_done = records.loc[records["status"] == "ok", "done_ns"].to_numpy(dtype=np.int64)
    return server_side(samples, window, ok_done, server, protocol)
