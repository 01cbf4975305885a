"""Triton's server configs do what they say, as Triton itself counts it: the dynamic batcher merges
concurrent requests (its batch statistics and execution count), and the response cache answers
repeated inputs (its cache hit counter), both read through inferload's server-side view."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from analysis.stats import Slo, summarize_run
from loadtest import LoadSettings, read_run, run_load
from serving import ServerMonitor, Stack

pytestmark = pytest.mark.servers


def _load(stack: Stack, run_dir: Path, **fields: object) -> None:
    settings = LoadSettings(
        server="triton", protocol="grpc", port=stack.ports.triton_grpc, features=1024, duration_s=3.0,
        warmup_s=0.5, lateness_p99_limit_ms=100.0, server_kind=stack.triton_kind, **fields,  # type: ignore[arg-type]
    )
    with ServerMonitor(stack.monitored(), run_dir, interval_s=0.25):
        run_load(settings, run_dir, progress=False)
    assert set(read_run(run_dir).records["status"]) == {"ok"}


def _batch_sizes(stack: Stack) -> dict[int, int]:
    """Triton's own batch statistics: executions per batch size since it started."""
    url = f"http://127.0.0.1:{stack.ports.triton_http}/v2/models/linear/stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        (model,) = json.loads(response.read())["model_stats"]
    return {int(entry["batch_size"]): int(entry["compute_infer"]["count"]) for entry in model["batch_stats"]}


def test_dynamic_batching_merges_concurrent_requests(configured_triton: Stack, tmp_path: Path) -> None:
    """Eight requests always in flight and a 50 ms queue delay: executions of more than one request.
    Every input is new (repeat share 0), so the response cache answers none of them."""
    before = _batch_sizes(configured_triton)
    _load(configured_triton, tmp_path, mode="closed", concurrency=8, repeat_share=0.0, payload_seed=11)
    merged = {size: count - before.get(size, 0) for size, count in _batch_sizes(configured_triton).items()}
    assert any(size > 1 and count > 0 for size, count in merged.items()), merged
    side = summarize_run(tmp_path, Slo()).server_side
    assert side is not None and side.executions is not None and side.server_requests is not None
    assert side.executions < side.server_requests / 2, (side.executions, side.server_requests)
    assert side.cache_hits == 0
    assert any("dynamic batching merged" in note for note in side.notes)


def test_the_response_cache_answers_repeated_inputs(configured_triton: Stack, tmp_path: Path) -> None:
    """Inputs of a seed of their own: the session's Triton has cached no answer to them yet."""
    _load(configured_triton, tmp_path, rate=80.0, repeat_share=0.9, payload_seed=12)
    side = summarize_run(tmp_path, Slo()).server_side
    assert side is not None and side.server_requests and side.cache_hits is not None
    assert side.cache_misses is not None and side.cache_misses > 0  # the first sight of every input
    # ~90 % of requests resend an input already sent; one still in flight is not cached yet
    assert side.cache_hits > 0.6 * side.server_requests, (side.cache_hits, side.server_requests)
    assert side.inference_ms is not None and side.inference_ms > 0  # per request executed (the misses)
