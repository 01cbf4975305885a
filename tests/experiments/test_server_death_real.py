"""A server killed in the middle of a cell (REAL tfs-compat / TF Serving, small model): that cell is
failed with its partial records kept, the server is restarted, and the matrix goes on."""

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
from serving.ports import Ports

pytestmark = [pytest.mark.servers, pytest.mark.slow]

MATRIX = """\
name: server-death
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving]
protocols: [grpc]
load: {mode: open, rates: [40]}
batch_sizes: [1]
warmup_s: 0
duration_s: 3
calibration: {enabled: false}       # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {enabled: false}     # here they would only add their seconds
repetitions: 2
"""


class KillServerMidCell(RealStages):
    """The real stages; one second into the first cell, the server's process gets SIGKILL."""

    def __init__(self) -> None:
        super().__init__()
        self.killed_pid: int | None = None
        self.started_pids: list[int] = []

    def run_load(self, settings: Any, out_dir: Path) -> Any:
        if self.killed_pid is None:
            pid = self.current.servers["tfserving"].pid
            self.killed_pid = pid
            threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        return super().run_load(settings, out_dir)

    def start_server(self, *args: Any, **kwargs: Any) -> RunningServers:
        self.current: Any = super().start_server(*args, **kwargs)
        self.started_pids.append(self.current.servers["tfserving"].pid)
        return self.current


def test_a_killed_server_fails_only_its_cell(small_artifacts: ArtifactLayout, tmp_path: Path) -> None:
    stages = KillServerMidCell()
    result = run_experiment(parse_experiment(MATRIX), tmp_path, progress=False, measure_floor=False,
                            artifacts_dir=small_artifacts.root, ports=Ports.free(), stages=stages)
    first, second = "tfserving-grpc-b1-default-r40-rep0", "tfserving-grpc-b1-default-r40-rep1"
    assert result.failed == (first,) and result.done == (second,)
    record = json.loads((tmp_path / "cells" / first / "cell.json").read_text())
    assert record["status"] == "failed" and "tfserving died during the cell" in record["error"]
    partial = list((tmp_path / "cells" / first).glob("requests*.jsonl"))
    assert partial and sum(len(p.read_text().splitlines()) for p in partial) > 1, "partial records kept"
    assert len(stages.started_pids) == 2 and stages.started_pids[0] == stages.killed_pid, "restarted once"
