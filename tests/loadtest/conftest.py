"""Fixtures for the load generator's tests: real servers (small model) on free ports, per session.

Each server is its own stack, so TorchServe tests run even when TF Serving cannot start, and the
coordinated-omission test can stall one server without touching the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest import LoadSettings


class Servers:
    """Starts each server of the small model on first use (free ports, own state dir), once per session."""

    def __init__(self, artifacts: object, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._artifacts = artifacts
        self._tmp = tmp_path_factory
        self._stacks: dict[str, object] = {}

    def __getitem__(self, name: str):  # -> serving.stack.Stack
        if name not in self._stacks:
            from serving import stack
            from serving.ports import Ports

            self._stacks[name] = stack.up(
                self._artifacts,
                servers=[name],
                ports=Ports.free(),
                state_dir=self._tmp.mktemp(f"state-{name}"),
                timeout_s=240,
            )
        return self._stacks[name]

    def down(self) -> None:
        for running in self._stacks.values():
            running.down()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def servers(small_artifacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """servers["torchserve"] / servers["tfserving"]: a running Stack each, stopped at session end."""
    started = Servers(small_artifacts, tmp_path_factory)
    try:
        yield started
    finally:
        started.down()


def port_for(stacks: Servers, server: str, protocol: str) -> int:
    ports = stacks[server].ports
    if server == "tfserving":
        return ports.tfserving_grpc if protocol == "grpc" else ports.tfserving_rest
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
            "server_kind": getattr(servers[server], "tfserving_kind", None),
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
