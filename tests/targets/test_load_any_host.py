"""`inferload load` measures servers on another host: the 6 server x protocol combinations sent from
this namespace to real servers on the namespace host's address (a real veth link, 198.18.0.0/15).

Hosts are given the ways users write them: `http://HOST:PORT` for REST, `HOST` plus `--port` for gRPC.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_hosts import RemoteServers, run_inferload

from loadtest import read_run

COMBINATIONS = [
    (server, protocol)
    for server in ("tfserving", "torchserve")
    for protocol in ("rest-json", "rest-binary", "grpc")
]
pytestmark = [pytest.mark.servers, pytest.mark.slow]


def host_args(remote: RemoteServers, server: str, protocol: str) -> list[str]:
    port = remote.port(server, protocol)
    if protocol == "grpc":
        return ["--host", remote.address, "--port", str(port)]
    return ["--host", f"http://{remote.address}:{port}"]


@pytest.mark.parametrize(("server", "protocol"), COMBINATIONS)
def test_load_reaches_the_remote_server_and_every_request_succeeds(
    remote_servers: RemoteServers, small_features: int, tmp_path: Path, server: str, protocol: str
) -> None:
    out = tmp_path / "run"
    done = run_inferload(
        "load", "--server", server, "--protocol", protocol, *host_args(remote_servers, server, protocol),
        "--metadata-url", remote_servers.metadata_url(server),
        "--rate", "20", "--duration", "1.5", "--features", str(small_features),
        "--lateness-limit-ms", "200", "--out", str(out), "--quiet",
    )
    assert done.returncode in (0, 1), done.stderr  # 1: flagged invalid (a busy machine), still measured
    run = read_run(out)
    assert run.header.settings["host"] == remote_servers.address
    assert run.header.settings["port"] == remote_servers.port(server, protocol)
    assert len(run.records) >= 5
    assert set(run.records["status"]) == {"ok"}, run.records["error"].dropna().head().tolist()
