"""Against the real servers (small model): a short open-loop load with the monitor running gives
server-side queue and inference figures from the servers' own metrics, and the requests the server
counted match the ok responses the client got between the same two samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_stacks import running_stack

from analysis.stats import Slo, summarize_run
from loadtest import LoadSettings, run_load
from models.artifacts import ArtifactLayout
from serving import ServerMonitor, ServerSettings, Stack
from serving.metrics_file import read_server_samples

# alone: the counts match within 5 % only if the servers answer the monitor's scrapes promptly (under
# SCHED_IDLE beside busy lanes one was a quarter second late: 179 counted of 190)
pytestmark = [pytest.mark.servers, pytest.mark.alone]


def _load_with_monitor(stack: Stack, server: str, protocol: str, run_dir: Path) -> None:
    ports = stack.ports
    port = {
        ("tfserving", "grpc"): ports.tfserving_grpc,
        ("tfserving", "rest-json"): ports.tfserving_rest,
        ("torchserve", "rest-json"): ports.torchserve_inference,
        ("torchserve", "grpc"): ports.torchserve_grpc,
    }[(server, protocol)]
    settings = LoadSettings(
        server=server,
        protocol=protocol,
        port=port,
        features=1024,
        rate=40.0,
        duration_s=4.0,
        warmup_s=1.0,
        lateness_p99_limit_ms=100.0,  # 2 shared cores: generator validity is not what this tests
        server_kind=stack.tfserving_kind if server == "tfserving" else "torchserve",
    )
    monitored = [m for m in stack.monitored() if m.name == server]
    with ServerMonitor(monitored, run_dir, interval_s=0.25):
        run_load(settings, run_dir, progress=False)


def _check_counts_and_times(run_dir: Path, server: str) -> None:
    summary = summarize_run(run_dir, Slo())
    side = summary.server_side
    samples = read_server_samples(run_dir / "server_metrics.jsonl")
    assert side is not None, f"no server-side view from {len(samples)} samples"
    assert side.server == server and side.cpu_source == "psutil"
    assert side.client_ok is not None and side.client_ok >= 100  # 40/s over a >= 4 s bracket
    # requests in flight when a bracketing sample is taken are counted on one side only
    assert side.server_requests == pytest.approx(side.client_ok, abs=max(4, 0.05 * side.client_ok))
    assert side.queue_ms is not None and side.queue_ms > 0
    assert side.inference_ms is not None and side.inference_ms > 0
    assert side.request_ms is not None and side.request_ms >= side.inference_ms
    # the server cannot spend longer on a request than the client waited for it, on average
    assert summary.measured.latency_ms.mean is not None and side.request_ms < summary.measured.latency_ms.mean
    assert side.cpu_seconds is not None and side.cpu_seconds > 0
    assert side.cpu_seconds_per_ok is not None and side.cpu_seconds_per_ok > 0


def test_torchserve_rest_queue_and_backend_times(both_servers: Stack, tmp_path: Path) -> None:
    _load_with_monitor(both_servers, "torchserve", "rest-json", tmp_path)
    _check_counts_and_times(tmp_path, "torchserve")


def test_torchserve_grpc_requests_are_counted_but_not_timed(both_servers: Stack, tmp_path: Path) -> None:
    """TorchServe 0.12 adds to ts_queue/ts_inference_latency_microseconds in RestJob only."""
    _load_with_monitor(both_servers, "torchserve", "grpc", tmp_path)
    side = summarize_run(tmp_path, Slo()).server_side
    assert side is not None and side.client_ok is not None and side.client_ok >= 100
    assert side.server_requests == pytest.approx(side.client_ok, abs=max(4, 0.05 * side.client_ok))
    assert (side.queue_ms, side.inference_ms, side.request_ms) == (None, None, None)
    samples = read_server_samples(tmp_path / "server_metrics.jsonl")
    for family in ("ts_queue_latency_microseconds_total", "ts_inference_latency_microseconds_total"):
        assert samples[0].total(family) == samples[-1].total(family), f"{family} moved for gRPC"


def test_tfs_compat_batching_queue_and_runtime(
    small_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    settings = ServerSettings(
        tfserving_kind="tfs-compat", tfserving_batching=True, tfserving_batch_timeout_us=2000
    )
    with running_stack(
        small_artifacts, tmp_path / "state", servers=("tfserving",), settings=settings
    ) as stack:
        _load_with_monitor(stack, "tfserving", "grpc", tmp_path / "run")
    _check_counts_and_times(tmp_path / "run", "tfserving")
