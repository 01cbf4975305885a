"""`inferload serve up` leaves the servers running detached; `serve status` shows them; `serve down`
(another process, through servers.json) leaves no process and no bound port behind, and is idempotent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from models.artifacts import ArtifactLayout
from serving.ports import is_free

pytestmark = pytest.mark.servers


def inferload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferload", "serve", *args], capture_output=True, text=True, timeout=300
    )


def test_up_status_down(small_artifacts: ArtifactLayout, tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = inferload(
        "up", "--artifacts", str(small_artifacts.root), "--free-ports", "--state-dir", str(state)
    )
    try:
        assert started.returncode == 0, started.stderr
        recorded = json.loads((state / "servers.json").read_text())
        kind = recorded["tfserving_kind"]
        assert f"TF Serving kind: {kind}" in started.stdout
        assert recorded["triton_kind"] in ("pytriton", "tritonserver")  # the wheel's binary, or one on PATH
        assert f"Triton kind: {recorded['triton_kind']} (Triton 2.51, Python backend)" in started.stdout
        for server in recorded["servers"].values():
            assert server["endpoints"]["rest"] in started.stdout
            assert server["log_file"] in started.stdout
            assert Path(server["log_file"]).exists()
        pids = {
            p.pid
            for server in recorded["servers"].values()
            for root in [psutil.Process(server["pid"])]
            for p in [root, *root.children(recursive=True)]
        }
        # tfs-compat or tensorflow_model_server; TorchServe's launcher, JVM, worker; tritonserver and its stub
        assert len(pids) >= 6
        ports = [port for server in recorded["servers"].values() for port in server["ports"].values()]
        assert not any(is_free(port) for port in ports)

        status = inferload("status", "--state-dir", str(state))
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("healthy") == 3
    finally:
        stopped = inferload("down", "--state-dir", str(state))

    assert stopped.returncode == 0, stopped.stderr
    assert "stopped: tfserving, torchserve, triton" in stopped.stdout
    survivors = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert survivors == []
    assert all(is_free(port) for port in ports)
    assert not (state / "servers.json").exists()

    again = inferload("down", "--state-dir", str(state))
    assert again.returncode == 0
    assert "nothing running" in again.stdout
    assert inferload("status", "--state-dir", str(state)).returncode == 1


def test_up_with_bad_settings_is_a_usage_error(tmp_path: Path) -> None:
    result = inferload("up", "--artifacts", str(tmp_path), "--torchserve-workers", "0")
    assert result.returncode == 2
    assert "torchserve_workers" in result.stderr
    assert "Traceback" not in result.stderr
