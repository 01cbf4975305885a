"""Fixtures for target tests: a namespace "server host" and real servers started inside it.

The servers are started the way a user starts them on a remote machine, `inferload serve up --bind
<address>`, only run under `ip netns exec`; the load is sent from this (root) namespace across the
veth link. One host and one pair of servers per session: starting them takes a while on 2 cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from capabilities import need
from netns import NetnsHost, default_prefix, netns_host
from remote_hosts import REPO, RemoteServers, inferload_argv

START_TIMEOUT_S = 400


@pytest.fixture(scope="session")
def server_host() -> Iterator[NetnsHost]:
    """A network namespace joined by a veth pair (198.18.0.0/15); removed at the end of the session."""
    need("netns")
    with netns_host(f"{default_prefix()}t") as host:
        yield host


@pytest.fixture(scope="session")
def remote_servers(server_host: NetnsHost, small_artifacts, tmp_path_factory) -> Iterator[RemoteServers]:
    """`inferload serve up --bind <namespace address>` run inside the namespace; `serve down` after."""
    state_dir = tmp_path_factory.mktemp("remote-servers")
    up = server_host.run(
        inferload_argv("serve", "up", "--artifacts", str(small_artifacts.root), "--bind", server_host.address,
                       "--free-ports", "--state-dir", str(state_dir), "--timeout", str(START_TIMEOUT_S - 60),
                       "--cpus", "all"),
        cwd=REPO, capture_output=True, text=True, timeout=START_TIMEOUT_S,
    )
    try:
        assert up.returncode == 0, f"serve up in the namespace failed:\n{up.stdout}\n{up.stderr}"
        state = json.loads((state_dir / "servers.json").read_text())
        yield RemoteServers(
            host=server_host,
            state_dir=state_dir,
            ports=state["ports"],
            pids={name: server["pid"] for name, server in state["servers"].items()},
            tfserving_kind=state["tfserving_kind"],
        )
    finally:
        server_host.run(inferload_argv("serve", "down", "--state-dir", str(state_dir)), cwd=REPO,
                        capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def small_features(small_artifacts) -> int:
    return int(json.loads((small_artifacts.root / "model.json").read_text())["features"])
