"""A Triton on another host (the namespace host) measured as an external target: the matrix names it
by URL like any Open Inference Protocol (V2) server, labels it `kind: v2`, checks it before any load,
sends all three protocols across the veth link and reads Triton's own metrics there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remote_hosts import RemoteServers, run_inferload

from analysis.stats import Slo, summarize_run
from loadtest import read_run

# alone: the server-side counts come from Prometheus samples of a few-second window (beside a busy worker,
# run 2 of this layout sampled no increase)
pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.alone]


def v2_matrix(remote: RemoteServers, *, features: int, model_name: str = "linear") -> str:
    host, ports = remote.address, remote.ports
    return f"""\
name: external-v2
model: {{classes: 64, features: {features}, seed: 0}}
servers: [triton]
protocols: [rest-json, rest-binary, grpc]
load: {{mode: open, rates: [20]}}
batch_sizes: [1]
server_configs:
  - name: as_deployed
warmup_s: 0
duration_s: 1.5
calibration: {{enabled: false}}   # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {{enabled: false}} # here they would only add their seconds
lateness_limit_ms: 200
target:
  kind: external
  model_name: {model_name}
  servers:
    triton:
      rest: http://{host}:{ports["triton_http"]}
      grpc: {host}:{ports["triton_grpc"]}
      metrics: http://{host}:{ports["triton_metrics"]}/metrics
      kind: v2
"""


def test_a_remote_triton_is_measured_over_every_protocol_as_a_v2_server(
    remote_servers: RemoteServers, small_features: int, tmp_path: Path
) -> None:
    matrix = tmp_path / "v2.yaml"
    matrix.write_text(v2_matrix(remote_servers, features=small_features))
    out = tmp_path / "results"
    done = run_inferload("run", str(matrix), "--out", str(out), "--no-progress", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (out / "servers").exists()  # nothing started here
    cells = sorted((out / "cells").iterdir())
    assert [json.loads((c / "cell.json").read_text())["protocol"] for c in cells] == [
        "grpc", "rest-binary", "rest-json"]
    for cell_dir in cells:
        cell = json.loads((cell_dir / "cell.json").read_text())
        assert cell["status"] == "done", cell["error"]
        assert cell["target"]["host"] == remote_servers.address
        run = read_run(cell_dir)
        assert set(run.records["status"]) == {"ok"} and len(run.records) > 10
        assert run.header.settings["server_kind"] == "v2"
        side = summarize_run(cell_dir, Slo()).server_side
        assert side is not None and side.cpu_source == "none"  # another host's process: metrics only
        assert side.server_requests is not None and side.server_requests > 10
        assert side.inference_ms is not None and "nv_inference_compute" in side.metrics_source


def test_a_model_the_remote_v2_server_does_not_serve_is_refused_before_any_load(
    remote_servers: RemoteServers, small_features: int, tmp_path: Path
) -> None:
    matrix = tmp_path / "v2.yaml"
    matrix.write_text(v2_matrix(remote_servers, features=small_features, model_name="resnet"))
    done = run_inferload("run", str(matrix), "--out", str(tmp_path / "results"), "--no-progress")
    assert done.returncode == 2
    assert "serves no model named 'resnet'" in done.stderr
    assert not (tmp_path / "results" / "cells").exists()
