"""ServerMonitor samples CPU (percent and cumulative seconds) and RSS of each server's whole process tree
and its scraped metrics into server_metrics.jsonl while load runs; a server without a process or
container here (external) is sampled for its metrics only, with source "none"."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from serving_clients import tfserving_rest_json, torchserve_rest_json

from serving import ServerMonitor, Stack
from serving.metrics_file import MonitoredServer, read_server_samples
from serving.prometheus import scrape_series


@pytest.mark.servers
def test_samples_both_servers_while_they_serve(
    both_servers: Stack, inputs: np.ndarray, tmp_path: Path
) -> None:
    with ServerMonitor(both_servers.monitored(), tmp_path, interval_s=0.1) as monitor:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            tfserving_rest_json(both_servers.ports, inputs)
            torchserve_rest_json(both_servers.ports, inputs)
    lines = [json.loads(line) for line in (tmp_path / "server_metrics.jsonl").read_text().splitlines()]
    assert lines[0]["schema"] == "inferload.server_metrics"
    samples = read_server_samples(tmp_path / "server_metrics.jsonl")
    assert len(samples) == monitor.samples_written >= 4
    by_server = {name: [s for s in samples if s.server == name] for name in ("tfserving", "torchserve")}
    for name, mine in by_server.items():
        assert mine, f"no samples for {name}"
        assert all(s.source == "psutil" and s.metrics_error is None for s in mine)
        assert all(s.rss_bytes is not None and s.rss_bytes > 10_000_000 for s in mine)
        assert max(s.cpu_percent or 0 for s in mine) > 0
        cpu_seconds = [s.cpu_seconds for s in mine]
        assert all(c is not None for c in cpu_seconds)
        assert cpu_seconds[-1] > cpu_seconds[0]  # type: ignore[operator]
        times = [s.t_ns for s in mine]
        assert times == sorted(times)
    last = by_server["torchserve"][-1]
    assert (last.total("ts_inference_requests_total", model_name="linear") or 0) > 0
    last_tf = by_server["tfserving"][-1]
    assert (last_tf.total(":tensorflow:serving:request_latency_count", entrypoint="REST") or 0) > 0


def test_a_server_with_no_process_here_is_sampled_for_metrics_only(tmp_path: Path) -> None:
    unreachable = MonitoredServer("tfserving", "tensorflow_model_server", "http://127.0.0.1:9/metrics")
    with ServerMonitor([unreachable], tmp_path, interval_s=0.05):
        time.sleep(0.3)
    samples = read_server_samples(tmp_path / "server_metrics.jsonl")
    assert samples
    assert all(s.source == "none" and s.cpu_seconds is None and s.rss_bytes is None for s in samples)
    assert all(s.metrics == {} and s.metrics_error for s in samples)  # says why nothing was scraped


def test_an_endpoint_that_does_not_answer_says_why() -> None:
    series, error = scrape_series("http://127.0.0.1:9/metrics", timeout_s=1)
    assert series == {}
    assert error and "refused" in error.lower()


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        ServerMonitor([], tmp_path, interval_s=0)


@pytest.mark.parametrize(
    ("bind", "metrics_host"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::1", "[::1]"), ("198.18.0.1", "198.18.0.1")],
)
def test_a_local_stack_is_watched_by_pid_and_metrics_on_its_bound_address(
    bind: str, metrics_host: str, tmp_path: Path
) -> None:
    from serving import Ports
    from serving.stack import ServerInfo

    ports = Ports()
    servers = {
        name: ServerInfo(name, kind, pid, 0.0, ports.of(name), {}, "log", "work")
        for name, kind, pid in (("tfserving", "tfs-compat", 11), ("torchserve", "torchserve", 22))
    }
    stack = Stack(
        artifacts=None, settings=None, ports=ports, state_dir=tmp_path, servers=servers, host=bind  # type: ignore[arg-type]
    )
    assert stack.monitored() == [
        MonitoredServer(
            "tfserving", "tfs-compat", f"http://{metrics_host}:8501/monitoring/prometheus/metrics", pid=11
        ),
        MonitoredServer("torchserve", "torchserve", f"http://{metrics_host}:8082/metrics", pid=22),
    ]
