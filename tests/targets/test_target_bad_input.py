"""A target that cannot be measured is a clear error before any load, naming what to fix: nothing
answering there, another model name, another input width. For `inferload load` and for an external
matrix alike; nothing is sent and no results are written."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
from remote_hosts import RemoteServers, run_inferload
from test_external_matrix import external_matrix

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def closed_port(remote: RemoteServers) -> int:
    """A port where nothing listens on the namespace host (connection refused there)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port in remote.ports.values():
            continue
        try:
            socket.create_connection((remote.address, port), timeout=2).close()
        except ConnectionRefusedError:
            return port
    raise AssertionError("no closed port found on the namespace host")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong model name", ["serves no model named 'no_such_model'", "--model-name"]),
        ("wrong input width", ["with 1024 input features", "would send 512", "--features 1024"]),
        ("nothing answers", ["no torchserve rest-json server answers", "--host/--port"]),
    ],
)
@pytest.mark.parametrize("server", ["tfserving", "torchserve"])
def test_inferload_load_refuses_a_target_it_cannot_measure(
    remote_servers: RemoteServers, tmp_path: Path, server: str, case: str, expected: list[str]
) -> None:
    port = remote_servers.port(server, "rest-json")
    metadata = remote_servers.metadata_url(server)
    args = ["--features", "1024"]
    if case == "wrong model name":
        args += ["--model-name", "no_such_model"]
    elif case == "wrong input width":
        args = ["--features", "512"]
    else:
        port = closed_port(remote_servers)
        expected = [text.replace("torchserve", server) for text in expected]
    out = tmp_path / "run"
    done = run_inferload(
        "load", "--server", server, "--protocol", "rest-json",
        "--host", f"http://{remote_servers.address}:{port}", "--metadata-url", metadata,
        "--rate", "10", "--duration", "1", *args, "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    for text in expected:
        assert text in done.stderr
    assert not out.exists()  # refused before anything was sent or written


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unreachable", ["the external target cannot be measured", "does not answer at", "target.servers"]),
        ("wrong model name", ["serves no model named 'no_such_model'"]),
        ("wrong input width", ["with 1024 input features", "matrix's model has 512", "model.features"]),
    ],
)
def test_an_external_matrix_refuses_a_target_it_cannot_measure_before_any_load(
    remote_servers: RemoteServers, tmp_path: Path, case: str, expected: list[str]
) -> None:
    if case == "unreachable":  # the namespace host, but ports where nothing listens
        closed = {role: closed_port(remote_servers) for role in remote_servers.ports}
        text = external_matrix(dataclasses.replace(remote_servers, ports=closed))
    elif case == "wrong model name":
        text = external_matrix(remote_servers, model_name="no_such_model")
    else:
        text = external_matrix(remote_servers, features=512)
    matrix = tmp_path / "external.yaml"
    matrix.write_text(text)
    out = tmp_path / "results"
    done = run_inferload("run", str(matrix), "--out", str(out), "--no-progress", timeout=300)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    for text in expected:
        assert text in done.stderr
    assert not (out / "cells").exists()  # no cell ran


def test_a_torchserve_load_aimed_at_another_servers_port_is_refused(remote_servers: RemoteServers,
                                                                     tmp_path: Path) -> None:
    """TF Serving's REST port answers HTTP, but not as TorchServe: /ping is 404 there."""
    other = remote_servers.port("tfserving", "rest-json")
    out = tmp_path / "run"
    done = run_inferload(
        "load", "--server", "torchserve", "--protocol", "rest-json",
        "--host", f"http://{remote_servers.address}:{other}",
        "--metadata-url", remote_servers.metadata_url("torchserve"),
        "--rate", "10", "--duration", "1", "--features", "1024", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not TorchServe's inference API (GET /ping: HTTP 404)" in done.stderr
    assert not out.exists()
