"""`inferload run` with replicas behind nginx (REAL tfs-compat, REAL nginx, small model): cells run
through the balancer, keep nginx.conf and their slice of its access log, monitor every replica, and a
replica killed mid-cell fails that cell only."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from inferload.experiments import parse_experiment
from inferload.runner import run_experiment
from inferload.stages import RealStages, RunningServers
from models.artifacts import ArtifactLayout
from serving.balancer import read_access_log, requests_per_upstream
from serving.metrics_file import read_server_samples
from serving.ports import Ports

pytestmark = [pytest.mark.servers, pytest.mark.slow]

MATRIX = """\
name: topology
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving]
protocols: [rest-binary, grpc]
load: {mode: open, rates: [30]}
batch_sizes: [1]
server_configs:
  - name: rr2
    replicas: 2
    balancer: {kind: nginx, policy: round_robin}
warmup_s: 0.5
duration_s: 2
calibration: {enabled: false}       # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {enabled: false}     # here they would only add their seconds
"""


def test_cells_run_through_nginx_to_both_replicas(nginx: str, small_artifacts: ArtifactLayout,
                                                  tmp_path: Path) -> None:
    result = run_experiment(parse_experiment(MATRIX), tmp_path, progress=False, measure_floor=False,
                            artifacts_dir=small_artifacts.root, ports=Ports.free())
    assert result.ok and len(result.done) == 2, result.failed
    for cell_id in result.done:
        cell_dir = tmp_path / "cells" / cell_id
        cell = json.loads((cell_dir / "cell.json").read_text())
        assert cell["server_config"]["replicas"] == 2
        assert cell["server_config"]["balancer"] == {"kind": "nginx", "policy": "round_robin", "tls": False}
        assert "upstream inferload_rest" in (cell_dir / "nginx.conf").read_text()
        logged = read_access_log(cell_dir / "balancer_access.jsonl")
        # predictions only: the load generator's preflight also GETs the model's metadata through nginx
        per_replica = requests_per_upstream([entry for entry in logged if entry.method == "POST"])
        assert len(per_replica) == 2 and min(per_replica.values()) >= 10, per_replica
        names = {sample.server for sample in read_server_samples(cell_dir / "server_metrics.jsonl")}
        assert names == {"tfserving-1", "tfserving-2", "nginx"}


class KillReplicaMidCell(RealStages):
    """The real stages; one second into the first cell, replica 2 gets SIGKILL."""

    killed = False

    def start_server(self, *args: Any, **kwargs: Any) -> RunningServers:
        self.current: Any = super().start_server(*args, **kwargs)
        return self.current

    def run_load(self, settings: Any, out_dir: Path) -> Any:
        if not self.killed:
            self.killed = True
            pid = self.current.stacks[1].servers["tfserving"].pid
            threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        return super().run_load(settings, out_dir)


def test_a_replica_that_dies_fails_its_cell(nginx: str, small_artifacts: ArtifactLayout,
                                            tmp_path: Path) -> None:
    matrix = MATRIX.replace("protocols: [rest-binary, grpc]", "protocols: [grpc]").replace(
        "duration_s: 2", "duration_s: 3\nrepetitions: 2")
    result = run_experiment(parse_experiment(matrix), tmp_path, progress=False, measure_floor=False,
                            artifacts_dir=small_artifacts.root, ports=Ports.free(),
                            stages=KillReplicaMidCell())
    assert len(result.failed) == 1 and len(result.done) == 1, (result.failed, result.done)
    failed = json.loads((tmp_path / "cells" / result.failed[0] / "cell.json").read_text())
    assert failed["status"] == "failed" and "tfserving-2 died during the cell" in failed["error"]
