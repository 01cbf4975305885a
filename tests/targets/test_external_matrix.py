"""`inferload run` with an `external` target: the matrix measures servers someone else started (here:
on the namespace host) and never starts, restarts or stops them, also across server configs."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from external_targets import torchserve_endpoints
from remote_hosts import RemoteServers, run_inferload

from loadtest import read_run

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def external_matrix(remote: RemoteServers, *, name: str = "external-test", features: int = 1024,
                    model_name: str = "linear", address: str | None = None) -> str:
    """A small matrix aimed at the remote servers (ports as `serve up --free-ports` chose them)."""
    host = address or remote.address
    ports = remote.ports
    return f"""\
name: {name}
model: {{classes: 64, features: {features}, seed: 0}}
servers: [tfserving, torchserve]
protocols: [rest-json, grpc]
load: {{mode: open, rates: [15]}}
batch_sizes: [1]
server_configs:
  - name: as_deployed
  - name: relabelled
    torchserve: {{workers: 2}}
warmup_s: 0
duration_s: 1
calibration: {{enabled: false}}   # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {{enabled: false}} # here they would only add their seconds
lateness_limit_ms: 200
target:
  kind: external
  model_name: {model_name}
  servers:
    tfserving:
      rest: http://{host}:{ports["tfserving_rest"]}
      grpc: {host}:{ports["tfserving_grpc"]}
      metrics: http://{host}:{ports["tfserving_rest"]}/monitoring/prometheus/metrics
      kind: {remote.tfserving_kind}
{torchserve_endpoints(host, ports)}"""


def process_identity(pid: int) -> tuple[int, float]:
    return pid, psutil.Process(pid).create_time()


def test_an_external_matrix_runs_every_cell_and_never_restarts_the_servers(
    remote_servers: RemoteServers, small_features: int, tmp_path: Path
) -> None:
    before = {name: process_identity(pid) for name, pid in remote_servers.pids.items()}
    matrix = tmp_path / "external.yaml"
    matrix.write_text(external_matrix(remote_servers, features=small_features))
    out = tmp_path / "results"
    done = run_inferload("run", str(matrix), "--out", str(out), "--no-progress", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    after = {name: process_identity(pid) for name, pid in remote_servers.pids.items()}
    assert after == before  # same processes: nothing was restarted (or stopped)
    assert not (out / "servers").exists()  # and nothing was started here
    cells = sorted((out / "cells").iterdir())
    assert len(cells) == 8  # 2 servers x 2 protocols x 2 configs
    for cell_dir in cells:
        cell = json.loads((cell_dir / "cell.json").read_text())
        assert cell["status"] == "done", cell["error"]
        assert cell["target"]["kind"] == "external"
        assert cell["target"]["host"] == remote_servers.address
        # servers inferload did not start may share this machine: their CPU is not counted as other work
        assert cell["machine"]["other_cpu_cores"] is None
        records = read_run(cell_dir).records
        assert set(records["status"]) == {"ok"} and len(records) > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["kind"] == "external"
    assert manifest["target"]["servers"]["torchserve"]["management"].startswith(f"http://{remote_servers.address}:")
    assert manifest["tfserving_kind"] == remote_servers.tfserving_kind
