"""Start tfs-compat as a real subprocess on free loopback ports, and stop it (its whole process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc

from serving.ports import free_ports

START_TIMEOUT_S = 180.0
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunningServer:
    process: subprocess.Popen[bytes] | None  # None: the session's shared server, not this test's to stop
    rest_port: int
    grpc_port: int
    log_path: Path

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def predict_url(self) -> str:
        return f"{self.rest_url}/v1/models/linear:predict"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    return free_ports(1)[0]  # claimed machine-wide, as Ports.free's


def tfs_compat_argv(base_path: Path, rest_port: int, grpc_port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "serving.tfs_compat",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--model_name=linear",
        f"--model_base_path={base_path}",
        "--rest_api_num_threads=8",
        "--grpc_max_threads=8",
        *extra,
    ]


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within 10 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


MONITORING_CONFIG = 'prometheus_config {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'


def start_tfs_compat(base_path: Path, log_dir: Path, *extra: str) -> RunningServer:
    """Start (metrics on, as inferload starts it) and wait until REST answers and gRPC is ready; the
    caller must stop() it."""
    rest_port, grpc_port = free_port(), free_port()
    log_path = log_dir / f"tfs_compat_{rest_port}.log"
    monitoring = log_dir / f"monitoring_{rest_port}.config"
    monitoring.write_text(MONITORING_CONFIG)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            tfs_compat_argv(
                base_path, rest_port, grpc_port, f"--monitoring_config_file={monitoring}", *extra
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    server = RunningServer(process, rest_port, grpc_port, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"tfs-compat exited with {process.returncode}:\n{server.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.rest_url}/v1/models/linear", timeout=2) as response:
                    if response.status == 200:
                        with grpc.insecure_channel(server.grpc_target) as channel:
                            grpc.channel_ready_future(channel).result(timeout=30)
                        return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"tfs-compat not ready after {START_TIMEOUT_S} s:\n{server.log()[-3000:]}")
    except BaseException:
        stop(process)
        raise
