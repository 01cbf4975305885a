"""The command line takes tensorflow_model_server's flags and fails fast with a reason on bad ones."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tfs_compat_server import REPO_ROOT, RunningServer, free_port, start_tfs_compat, stop

from models.artifacts import ArtifactLayout
from serving.tfs_compat.flags import parse_flags


def test_flags_mirror_tensorflow_model_server() -> None:
    flags = parse_flags(
        [
            "--port=9000",
            "--rest_api_port=9001",
            "--model_name=linear",
            "--model_base_path=/models/linear",
            "--rest_api_num_threads=3",
            "--enable_batching",
            "--batching_parameters_file=/tmp/b.config",
            "--monitoring_config_file=/tmp/m.config",
        ]
    )
    assert (flags.port, flags.rest_api_port, flags.model_name) == (9000, 9001, "linear")
    assert flags.model_base_path == Path("/models/linear")
    assert flags.enable_batching and flags.batching_parameters_file == Path("/tmp/b.config")
    assert (flags.host, flags.rest_api_num_threads) == ("127.0.0.1", 3)


@pytest.mark.parametrize("value", ["true", "false"])
def test_boolean_flags_take_explicit_values(value: str) -> None:
    flags = parse_flags(["--model_base_path=/m", f"--enable_batching={value}"])
    assert flags.enable_batching is (value == "true")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.tfs_compat", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_unknown_flag_is_rejected() -> None:
    result = _run("--model_base_path=/m", "--model_nmae=linear")
    assert result.returncode == 2 and "--model_nmae" in result.stderr


@pytest.mark.servers
def test_missing_model_directory_fails_fast(tmp_path: Path) -> None:
    result = _run(f"--port={free_port()}", f"--model_base_path={tmp_path / 'absent'}")
    assert result.returncode == 1
    assert "is not a directory: export the model first" in result.stderr


@pytest.mark.servers
def test_port_in_use_fails_fast(tfs_compat: RunningServer, small_artifacts: ArtifactLayout) -> None:
    result = _run(
        f"--port={free_port()}",
        f"--rest_api_port={tfs_compat.rest_port}",
        "--model_name=linear",
        f"--model_base_path={small_artifacts.tf_base_path}",
    )
    assert result.returncode == 1 and "pick a free --rest_api_port" in result.stderr


@pytest.mark.servers
def test_start_up_log_reads_like_tf_serving(tfs_compat: RunningServer) -> None:
    log = tfs_compat.log()
    assert f"Running gRPC ModelServer at 127.0.0.1:{tfs_compat.grpc_port} ..." in log
    assert f"Exporting HTTP/REST API at:127.0.0.1:{tfs_compat.rest_port} ..." in log
    assert log.index("Warmed up signature serving_default") < log.index("Exporting HTTP/REST API")


@pytest.mark.servers
def test_sigterm_stops_the_server_and_frees_its_ports(
    small_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    server = start_tfs_compat(small_artifacts.tf_base_path, tmp_path)
    try:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        stop(server.process)
    for port in (server.rest_port, server.grpc_port):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
            sock.bind(("127.0.0.1", port))  # raises if anything still listens there
