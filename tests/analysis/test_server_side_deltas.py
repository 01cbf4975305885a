"""The server's own view of a window: deltas of its cumulative counters between the samples that
bracket the window, turned into mean queue / inference / request time per request and CPU-seconds."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.server_side import bracket, server_side
from serving.metrics_file import ServerSample, series_key

S = 1_000_000_000
WINDOW = (1 * S, 11 * S)
TF = ":tensorflow:serving:"


def _tf(entry: str, api: str, count: float, sum_us: float) -> dict[str, float]:
    labels = {"API": api, "entrypoint": entry, "model_name": "linear"}
    return {
        series_key(f"{TF}request_latency_count", labels): count,
        series_key(f"{TF}request_latency_sum", labels): sum_us,
    }


def _runtime(count: float, sum_us: float) -> dict[str, float]:
    labels = {"API": "Predict", "model_name": "linear", "runtime": "TF1"}
    return {
        series_key(f"{TF}runtime_latency_count", labels): count,
        series_key(f"{TF}runtime_latency_sum", labels): sum_us,
    }


def _queue(count: float, sum_us: float) -> dict[str, float]:
    labels = {"thread_pool_name": "batch_threads"}
    return {
        series_key(f"{TF}batching_session:queuing_latency_count", labels): count,
        series_key(f"{TF}batching_session:queuing_latency_sum", labels): sum_us,
    }


def _ts(requests: float, queue_us: float, inference_us: float) -> dict[str, float]:
    labels = {"model_name": "linear", "model_version": "default"}
    return {
        series_key("ts_inference_requests_total", labels): requests,
        series_key("ts_queue_latency_microseconds_total", labels): queue_us,
        series_key("ts_inference_latency_microseconds_total", labels): inference_us,
    }


def _nv(requests: float, queue_us: float, infer_us: float, request_us: float, *,
        executions: float | None = None, hits: float | None = None, misses: float | None = None,
        model: str = "linear") -> dict[str, float]:
    """Triton's per-model counters (Triton 2.51's names; the Prometheus parser adds `_total` to every
    counter's samples: test_triton_metrics_names_as_parsed checks it on Triton's own exposition text)."""
    labels = {"model": model, "version": "1"}
    series = {
        "nv_inference_request_success": requests,
        "nv_inference_queue_duration_us": queue_us,
        "nv_inference_compute_input_duration_us": requests * 10.0,
        "nv_inference_compute_infer_duration_us": infer_us,
        "nv_inference_compute_output_duration_us": requests * 20.0,
        "nv_inference_request_duration_us": request_us,
        "nv_inference_exec_count": requests if executions is None else executions,
    }
    if hits is not None:
        series |= {"nv_cache_num_hits_per_model": hits, "nv_cache_num_misses_per_model": misses or 0.0}
    return {series_key(f"{name}_total", labels): value for name, value in series.items()}


def _samples(server: str, kind: str, before: dict, inside: dict, after: dict) -> list[ServerSample]:
    """Samples at 0.5 s (before the window), 6 s (inside) and 11.5 s (after it), CPU 10 -> 99 -> 12.5 s.
    The one inside must never be used: the bracket is the last before and the first after."""
    return [
        ServerSample(S // 2, server, kind, "psutil", 50.0, 10.0, 1, before),
        ServerSample(6 * S, server, kind, "psutil", 50.0, 99.0, 1, inside),
        ServerSample(11 * S + S // 2, server, kind, "psutil", 50.0, 12.5, 1, after),
    ]


# 250 ok responses completed between the bracket's samples (0.5 s .. 11.5 s), 7 outside it
OK_DONE = np.concatenate([np.linspace(0.6 * S, 11.4 * S, 250), [0.1 * S] * 3, [12 * S] * 4]).astype(np.int64)

CASES = [
    pytest.param(
        # REST, no batching: 100 requests of 800 us at the server, session runs of 300 us; the gRPC
        # series moves too (another client) and must not count for a REST cell
        "tfserving", "tfs-compat", "rest-json",
        {**_tf("REST", "predict", 10, 10_000), **_tf("GRPC", "Predict", 5, 5_000), **_runtime(10, 5_000)},
        {**_tf("REST", "predict", 60, 999), **_tf("GRPC", "Predict", 5, 5_000), **_runtime(60, 999)},
        {**_tf("REST", "predict", 110, 90_000), **_tf("GRPC", "Predict", 9, 9_000), **_runtime(110, 35_000)},
        (100, None, 0.3, 0.8),
        id="tfs-compat rest, no batching: inference = runtime",
    ),
    pytest.param(
        # gRPC with batching: 100 requests; 2 ms queued, runs (queue included) of 5 ms, 6 ms at the server
        "tfserving", "tensorflow_model_server", "grpc",
        {**_tf("GRPC", "Predict", 0, 0), **_runtime(0, 0), **_queue(0, 0)},
        {},
        {**_tf("GRPC", "Predict", 100, 600_000), **_runtime(100, 500_000), **_queue(100, 200_000)},
        (100, 2.0, 3.0, 6.0),
        id="tf serving grpc, batching: inference = runtime - queue",
    ),
    pytest.param(
        # 200 requests: 100 ms queued in all (0.5 ms each), 600 ms from job to response (3 ms each)
        "torchserve", "torchserve", "rest-binary",
        _ts(50, 1_000, 9_000), _ts(0, 0, 0), _ts(250, 101_000, 609_000),
        (200, 0.5, 2.5, 3.0),
        id="torchserve rest: inference = backend = total - queue",
    ),
    pytest.param(
        "torchserve", "torchserve", "grpc",
        _ts(50, 1_000, 9_000), {}, _ts(250, 1_000, 9_000),
        (200, None, None, None),
        id="torchserve grpc: counted, not timed",
    ),
    pytest.param(
        # 200 requests (any protocol: Triton counts per model): 100 ms queued (0.5 ms each), 400 ms in
        # the model's execute (2 ms each), 1 s in the server (5 ms each); another model's series ignored
        "triton", "pytriton", "grpc",
        {**_nv(50, 5_000, 20_000, 90_000), **_nv(7, 7, 7, 7, model="other")}, {},
        {**_nv(250, 105_000, 420_000, 1_090_000), **_nv(70, 70, 70, 70, model="other")},
        (200, 0.5, 2.0, 5.0),
        id="triton: inference = compute_infer per request",
    ),
    pytest.param(
        # 200 requests, 150 answered from the response cache: the 50 executed took 4 ms each
        "triton", "pytriton", "rest-json",
        _nv(0, 0, 0, 0, hits=0, misses=0), {}, _nv(200, 20_000, 200_000, 400_000, hits=150, misses=50),
        (200, 0.1, 4.0, 2.0),
        id="triton with the response cache: inference per request executed",
    ),
]


@pytest.mark.parametrize(("server", "kind", "protocol", "before", "inside", "after", "expected"), CASES)
def test_means_per_request_from_counter_deltas(
    server: str, kind: str, protocol: str, before: dict, inside: dict, after: dict, expected: tuple
) -> None:
    samples = _samples(server, kind, before, inside, after)
    side = server_side(samples, WINDOW, OK_DONE, server, protocol)
    assert side is not None
    requests, queue, inference, request = expected
    assert side.server_requests == requests
    for got, want in ((side.queue_ms, queue), (side.inference_ms, inference), (side.request_ms, request)):
        assert got == (pytest.approx(want) if want is not None else None)
    assert side.span_s == pytest.approx(11.0)
    assert side.client_ok == 250
    # CPU: 12.5 - 10 = 2.5 s over the same bracket, for the 250 ok responses completed in it
    assert side.cpu_seconds == pytest.approx(2.5)
    assert side.cpu_seconds_per_ok == pytest.approx(0.01)
    assert side.cpu_source == "psutil" and side.kind == kind
    assert side.metrics_source.startswith("Prometheus")


def test_triton_s_merged_batches_cache_and_compute_split_are_reported() -> None:
    """80 requests in 20 executions (batches of 4); the input and output copies are figures of their own."""
    samples = _samples("triton", "tritonserver", _nv(0, 0, 0, 0, hits=0, misses=0), {},
                       _nv(80, 8_000, 80_000, 160_000, executions=20, hits=0, misses=80))
    side = server_side(samples, WINDOW, OK_DONE, "triton", "rest-binary")
    assert side is not None
    assert (side.executions, side.cache_hits, side.cache_misses) == (20, 0, 80)
    assert (side.compute_input_ms, side.compute_output_ms) == (pytest.approx(0.01), pytest.approx(0.02))
    assert any("merged 80 requests into 20 executions" in note for note in side.notes)
    assert "nv_inference_compute" in side.metrics_source and "nv_cache" in side.metrics_source


def test_triton_metrics_names_as_parsed() -> None:
    """Triton's exposition text (its HELP/TYPE lines as 2.51 writes them) read by the monitor's parser:
    the counters' samples come back with `_total`, the names the figures are computed from."""
    from serving.prometheus import parse_metrics

    text = "".join(
        f"# HELP {name} {name}\n# TYPE {name} counter\n{name}{{model=\"linear\",version=\"1\"}} 5\n"
        for name in ("nv_inference_request_success", "nv_inference_compute_infer_duration_us",
                     "nv_cache_num_hits_per_model")
    ) + "# HELP nv_inference_pending_request_count x\n# TYPE nv_inference_pending_request_count gauge\n" \
        'nv_inference_pending_request_count{model="linear",version="1"} 0\n'
    parsed = parse_metrics(text)
    assert 'nv_inference_request_success_total{model="linear",version="1"}' in parsed
    assert 'nv_cache_num_hits_per_model_total{model="linear",version="1"}' in parsed
    assert 'nv_inference_pending_request_count{model="linear",version="1"}' in parsed


def test_grpc_torchserve_says_why_it_has_no_times() -> None:
    samples = _samples("torchserve", "torchserve", _ts(0, 0, 0), {}, _ts(5, 0, 0))
    side = server_side(samples, WINDOW, OK_DONE, "torchserve", "grpc")
    assert side is not None and any("REST requests only" in note for note in side.notes)


def test_a_counter_that_went_back_gives_no_figure() -> None:
    """A restarted server starts its counters again: the delta would be meaningless."""
    samples = _samples("torchserve", "torchserve", _ts(500, 9_000, 90_000), {}, _ts(100, 1_000, 9_000))
    side = server_side(samples, WINDOW, OK_DONE, "torchserve", "rest-json")
    assert side is not None
    assert (side.server_requests, side.queue_ms, side.inference_ms) == (None, None, None)


def test_samples_inside_the_window_only_are_used_with_a_note() -> None:
    inside = [
        ServerSample(2 * S, "torchserve", "torchserve", "psutil", 1.0, 1.0, 1, _ts(0, 0, 0)),
        ServerSample(10 * S, "torchserve", "torchserve", "psutil", 1.0, 2.0, 1, _ts(10, 1_000, 5_000)),
    ]
    result = bracket(inside, WINDOW, lambda s: bool(s.metrics))
    assert result is not None
    first, last, notes = result
    assert (first.t_ns, last.t_ns) == (2 * S, 10 * S)
    assert len(notes) == 2 and all("less than the window" in n for n in notes)


def test_an_external_server_has_metrics_but_no_cpu() -> None:
    samples = [
        ServerSample(0, "tfserving", "tensorflow_model_server", "none", None, None, None,
                     {**_tf("REST", "predict", 0, 0), **_runtime(0, 0)}),
        ServerSample(12 * S, "tfserving", "tensorflow_model_server", "none", None, None, None,
                     {**_tf("REST", "predict", 4, 4_000), **_runtime(4, 2_000)}),
    ]
    side = server_side(samples, WINDOW, OK_DONE, "tfserving", "rest-json")
    assert side is not None
    assert (side.request_ms, side.inference_ms, side.cpu_seconds, side.cpu_source) == (1.0, 0.5, None, "none")
    assert any("no CPU source" in note for note in side.notes)


def test_no_samples_of_the_server_means_no_server_side() -> None:
    samples = _samples("torchserve", "torchserve", _ts(0, 0, 0), {}, _ts(1, 1, 1))
    assert server_side(samples, WINDOW, OK_DONE, "tfserving", "grpc") is None


def test_an_external_server_of_unknown_kind_is_read_by_the_families_it_exports() -> None:
    samples = [
        ServerSample(0, "torchserve", "external", "none", None, None, None, _ts(0, 0, 0)),
        ServerSample(12 * S, "torchserve", "external", "none", None, None, None, _ts(10, 5_000, 20_000)),
    ]
    side = server_side(samples, WINDOW, OK_DONE, "torchserve", "rest-json")
    assert side is not None
    assert (side.server_requests, side.queue_ms, side.inference_ms) == (10, 0.5, 1.5)
