"""The process behaves as tensorflow_model_server at start-up: its flags, its exit status 255 and its
`Failed to start server. Error: ...` line on refused combinations, unknown arguments warned about but
not fatal, REST skipped (not fatal) when its port cannot be bound. The decisions themselves are
tested without a process in test_refuses_what_tf_serving_refuses.py."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from tfs_compat_server import REPO_ROOT, RunningServer, free_port, start_tfs_compat, stop, tfs_compat_argv

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


@pytest.mark.servers  # starts the server program, which refuses before it listens
def test_a_value_it_cannot_interpret_prints_the_usage_and_exits_255() -> None:
    result = _run("--model_base_path=/m", "--port=abc")
    assert result.returncode == 255
    assert "Couldn't interpret value abc for flag port." in result.stderr
    assert result.stdout.startswith("usage: tensorflow_model_server\nFlags:\n")


def test_help_prints_the_usage_and_exits_255() -> None:
    result = _run("--help")
    assert result.returncode == 255 and "--enable_batching=false" in result.stdout


def test_version_prints_the_versions_and_exits_0() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("TensorFlow ModelServer: tfs-compat")
    assert "TensorFlow Library: " in result.stdout


@pytest.mark.servers  # starts the server program, which refuses before it listens
def test_batching_file_without_enable_batching_is_refused_as_the_real_binary_refuses_it() -> None:
    result = _run("--model_base_path=/m", "--batching_parameters_file=/b.txt")
    assert result.returncode == 255
    assert (
        "Failed to start server. Error: INVALID_ARGUMENT: server_options.batching_parameters_file is set "
        "without setting server_options.enable_batching to true." in result.stdout
    )


@pytest.mark.servers
def test_missing_model_directory_fails_fast(tmp_path: Path) -> None:
    """The real binary would keep polling for the directory; tfs-compat exits with the reason."""
    result = _run(f"--port={free_port()}", f"--model_base_path={tmp_path / 'absent'}")
    assert result.returncode == 255
    assert "Failed to start server. Error:" in result.stdout
    assert "is not a directory: export the model first" in result.stderr


@pytest.mark.servers
def test_grpc_port_in_use_fails_like_build_and_start(
    tfs_compat: RunningServer, small_artifacts: ArtifactLayout
) -> None:
    result = _run(
        f"--port={tfs_compat.grpc_port}",
        f"--rest_api_port={free_port()}",
        "--model_name=linear",
        f"--model_base_path={small_artifacts.tf_base_path}",
    )
    assert result.returncode == 255
    assert (
        "Failed to start server. Error: INVALID_ARGUMENT: Failed to BuildAndStart gRPC server"
        in result.stdout
    )


@pytest.mark.servers
def test_unknown_argument_is_reported_and_the_server_starts_anyway(
    small_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    server = start_tfs_compat(small_artifacts.tf_base_path, tmp_path, "--model_nmae=linear")
    try:
        assert "unknown argument: --model_nmae=linear" in server.log()
    finally:
        stop(server.process)


@pytest.mark.servers
def test_rest_port_in_use_is_logged_and_grpc_still_serves(
    tfs_compat: RunningServer, small_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    log_path = tmp_path / "rest_in_use.log"
    grpc_port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            tfs_compat_argv(small_artifacts.tf_base_path, tfs_compat.rest_port, grpc_port),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=180)
        for _ in range(100):  # the REST error is logged right after gRPC starts
            if "Failed to start HTTP Server at localhost:" in log_path.read_text():
                break
            time.sleep(0.1)
        assert f"Failed to start HTTP Server at localhost:{tfs_compat.rest_port}" in log_path.read_text()
        assert process.poll() is None  # still running, serving gRPC only
    finally:
        stop(process)


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
