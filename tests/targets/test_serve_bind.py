"""`inferload serve up --bind ADDRESS`: tfs-compat, TorchServe and Triton listen on that address (here the
namespace host's), servers.json records it, endpoints are printed with it; a bind address that is
not this machine's, or not an address at all, is refused before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remote_hosts import REPO, RemoteServers, inferload_argv, run_inferload

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def test_the_servers_listen_on_the_bind_address_and_say_so(remote_servers: RemoteServers) -> None:
    address = remote_servers.address
    state = json.loads((remote_servers.state_dir / "servers.json").read_text())
    assert state["bind"] == address
    for server in state["servers"].values():
        assert all(address in endpoint for endpoint in server["endpoints"].values())
    properties = (remote_servers.state_dir / "torchserve" / "config.properties").read_text().splitlines()
    assert f"inference_address=http://{address}:{remote_servers.ports['torchserve_inference']}" in properties
    assert f"grpc_inference_address={address}" in properties
    tfs_log = (remote_servers.state_dir / "tfserving" / "server.log").read_text()
    assert f"--host={address}" in tfs_log  # tfs-compat's command line (the real binary binds 0.0.0.0)
    triton_log = (remote_servers.state_dir / "triton" / "server.log").read_text()
    for listener in ("http", "grpc", "metrics"):  # Triton itself would bind 0.0.0.0
        assert f"--{listener}-address={address}" in triton_log

    status = remote_servers.host.run(
        inferload_argv("serve", "status", "--state-dir", str(remote_servers.state_dir)),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert status.returncode == 0, status.stdout + status.stderr  # healthy, checked at the bind address
    rest = remote_servers.ports["tfserving_rest"]
    assert f"http://{address}:{rest}/v1/models/linear:predict" in status.stdout
    assert f"bound to: {address}" in status.stdout


@pytest.mark.parametrize(
    ("bind", "message"),
    [
        ("serving-box", "--bind 'serving-box' is not an IP address"),
        ("198.18.255.254", "cannot bind 198.18.255.254: it is not an address of this machine"),
    ],
)
def test_a_bind_address_that_cannot_be_bound_is_refused_before_anything_starts(
    small_artifacts, tmp_path: Path, bind: str, message: str
) -> None:
    done = run_inferload("serve", "up", "--artifacts", str(small_artifacts.root), "--bind", bind,
                         "--free-ports", "--state-dir", str(tmp_path / "state"), "--cpus", "all")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (tmp_path / "state" / "servers.json").exists()
