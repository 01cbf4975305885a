"""A matrix with `cpus: {servers: "0", load: "1"}` really runs there: every thread of every server
process (TorchServe's Java frontend and Python worker, tfs-compat) is allowed only CPU 0, every load
process only CPU 1 (read from /proc/<pid>/task/*/status during the run), and the sets are recorded in
manifest.json and load.json."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pytest

from models.artifacts import ArtifactLayout
from serving.processes import ProcessHandle

pytestmark = [
    pytest.mark.servers,
    pytest.mark.slow,
    pytest.mark.needs("cpus-0-1"),
]

MATRIX = """\
name: pinned
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving, torchserve]
protocols: [grpc]
load: {mode: open, rates: [20]}
batch_sizes: [1]
warmup_s: 0.5
duration_s: 2
calibration: {enabled: false}       # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {enabled: false}     # here they would only add their seconds
cpus: {servers: "0", load: "1"}
"""


def allowed_cpus(pid: int) -> set[str]:
    """Cpus_allowed_list of every thread of the process (a thread started before pinning would differ)."""
    lists = set()
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    lists.add(line.split(":", 1)[1].strip())
        except OSError:
            continue  # the thread ended meanwhile
    return lists


class Sampler:
    """Reads the CPU affinity of the servers (from their servers.json) and of the load processes."""

    def __init__(self, runner: subprocess.Popen[bytes], out: Path) -> None:
        self.runner = runner
        self.out = out
        self.server_cpus: dict[str, set[str]] = defaultdict(set)  # "torchserve/java" -> {"0"}
        self.load_cpus: set[str] = set()
        self.load_pids: set[int] = set()

    def sample(self) -> None:
        for state in self.out.glob("servers/*/servers.json"):
            try:
                servers = json.loads(state.read_text())["servers"]
            except (OSError, ValueError, KeyError):
                continue
            for name, info in servers.items():
                for proc in ProcessHandle(info["pid"], info["create_time"]).tree():
                    with contextlib.suppress(psutil.Error):
                        self.server_cpus[f"{name}/{proc.name()}"] |= allowed_cpus(proc.pid)
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process(self.runner.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "loadtest._worker" in " ".join(proc.cmdline()):
                        self.load_cpus |= allowed_cpus(proc.pid)
                        self.load_pids.add(proc.pid)


def test_servers_and_load_run_on_their_own_cpus(small_artifacts: ArtifactLayout, tmp_path: Path) -> None:
    matrix = tmp_path / "pinned.yaml"
    matrix.write_text(MATRIX)
    out = tmp_path / "out"
    runner = subprocess.Popen([sys.executable, "-m", "inferload", "run", str(matrix), "--out", str(out),
                               "--artifacts", str(small_artifacts.root), "--free-ports", "--no-progress",
                               "--no-floor"])  # not what this checks: the floor costs seconds of start-up
    stages = Sampler(runner, out)
    deadline = time.monotonic() + 600
    try:
        while runner.poll() is None and time.monotonic() < deadline:
            stages.sample()
            time.sleep(0.1)
    finally:
        if runner.poll() is None:
            runner.terminate()
        runner.wait(60)
    assert runner.returncode == 0
    assert not (out / "floor.json").exists()  # --no-floor

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cpus"]["servers"] == "0" and manifest["cpus"]["load"] == "1"
    assert manifest["cpus"]["source"] == "given"

    torchserve = {k: v for k, v in stages.server_cpus.items() if k.startswith("torchserve/")}
    assert any("java" in k for k in torchserve), f"TorchServe's Java frontend not seen: {sorted(torchserve)}"
    assert any("python" in k for k in torchserve), f"no TorchServe Python process seen: {sorted(torchserve)}"
    assert any(k.startswith("tfserving/") for k in stages.server_cpus)
    seen = {cpus for lists in stages.server_cpus.values() for cpus in lists}
    assert seen == {"0"}, dict(stages.server_cpus)
    assert len(stages.load_pids) >= 2  # one load process per cell
    assert stages.load_cpus == {"1"}

    for cell in (out / "cells").iterdir():
        load = json.loads((cell / "load.json").read_text())
        assert load["cpus"] == [1]
        assert load["cpus_applied"] == [[1]]
        assert load["settings"]["cpus"] == [1]
