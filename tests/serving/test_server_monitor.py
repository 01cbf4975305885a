"""ServerMonitor samples CPU and RSS of each server's whole process tree and its scraped metrics into
server_metrics.jsonl while load runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from serving_clients import tfserving_rest_json, torchserve_rest_json

from serving import ServerMonitor, Stack
from serving.monitor import parse_metrics

PROMETHEUS_TEXT = """\
# HELP ts_inference_requests_total Total number of inference requests.
# TYPE ts_inference_requests_total counter
ts_inference_requests_total{model_name="linear",model_version="default",hostname="h"} 5.0
ts_inference_requests_total{model_name="other",model_version="default",hostname="h"} 2.0
# HELP latency_seconds Request latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 3.0
latency_seconds_bucket{le="+Inf"} 4.0
latency_seconds_sum 0.5
latency_seconds_count 4.0
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 100.0
"""


def test_metrics_are_summed_over_labels_without_buckets_or_runtime_noise() -> None:
    assert parse_metrics(PROMETHEUS_TEXT) == {
        "ts_inference_requests_total": 7.0,
        "latency_seconds_sum": 0.5,
        "latency_seconds_count": 4.0,
    }


def test_unparseable_metrics_give_what_was_read() -> None:
    assert parse_metrics("this is not { prometheus") == {}


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
    assert len(lines) == monitor.samples_written >= 4
    by_server = {
        name: [line for line in lines if line["server"] == name] for name in ("tfserving", "torchserve")
    }
    for name, samples in by_server.items():
        assert samples, f"no samples for {name}"
        assert set(samples[0]) >= {"t_ns", "server", "kind", "source", "cpu_percent", "rss_bytes", "metrics"}
        assert all(s["source"] == "psutil" for s in samples)
        assert all(s["rss_bytes"] > 10_000_000 for s in samples)
        assert max(s["cpu_percent"] for s in samples) > 0
        times = [s["t_ns"] for s in samples]
        assert times == sorted(times)
    torchserve_metrics = by_server["torchserve"][-1]["metrics"]
    assert torchserve_metrics.get("ts_inference_requests_total", 0) > 0


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        ServerMonitor([], tmp_path, interval_s=0)
