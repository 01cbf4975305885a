"""Fixtures for the load generator's tests: real servers (small model) on free ports, per session.

The servers are the session's shared pair (tests/conftest.py `small_stack`); the coordinated-omission
test stalls one server's processes (and resumes them) without touching the other.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import LoadSettings


class Servers:
    """servers[name]: the running Stack that serves `name` (the session's shared pair)."""

    def __init__(self, running: object) -> None:
        self._running = running

    def __getitem__(self, name: str):  # -> serving.stack.Stack
        assert name in self._running.servers, f"no {name} in the shared stack"  # type: ignore[attr-defined]
        return self._running


@pytest.fixture(scope="session")
def servers(small_stack) -> Servers:  # type: ignore[no-untyped-def]
    """servers["torchserve"] / servers["tfserving"]: a running Stack, stopped at session end."""
    return Servers(small_stack)


def port_for(stacks: Servers, server: str, protocol: str) -> int:
    ports = stacks[server].ports
    if server == "tfserving":
        return ports.tfserving_grpc if protocol == "grpc" else ports.tfserving_rest
    if server == "triton":
        return ports.triton_grpc if protocol == "grpc" else ports.triton_http
    return ports.torchserve_grpc if protocol == "grpc" else ports.torchserve_inference


@pytest.fixture(scope="session")
def small_features(small_artifacts) -> int:
    return int(json.loads((Path(small_artifacts.root) / "model.json").read_text())["features"])


@pytest.fixture
def settings_for(servers, small_features):
    """Build LoadSettings aimed at the test servers: settings_for("torchserve", "grpc", rate=100, ...)."""

    def build(server: str, protocol: str, **overrides: object) -> LoadSettings:
        values: dict[str, object] = {
            "server": server,
            "protocol": protocol,
            "port": port_for(servers, server, protocol),
            "features": small_features,
            "duration_s": 2.0,
            "lateness_p99_limit_ms": 100.0,  # 2 shared cores: validity is tested on its own, not here
            "server_kind": servers[server].kind_of(server),
        }
        if "concurrency" not in overrides:
            values["rate"] = 100.0
        else:
            values["mode"] = "closed"
        values.update(overrides)
        return LoadSettings(**values)

    return build


@pytest.fixture
def port_of(servers):
    """port_of("torchserve", "rest-json"): where the test server listens for that protocol."""

    def find(server: str, protocol: str) -> int:
        return port_for(servers, server, protocol)

    return find
