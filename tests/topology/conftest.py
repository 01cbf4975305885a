"""Topology test fixtures: nginx (skipped only where this machine cannot have it) and one pair of
replicas per server shared by the modules that only send requests through them."""

from __future__ import annotations

import pytest
from capabilities import need

from models.artifacts import ArtifactLayout
from serving.balancer import nginx_binary
from serving.ports import Ports
from serving.replicas import ReplicatedServers, Topology, up_replicated
from serving.settings import ServerSettings


@pytest.fixture(scope="session")
def nginx() -> str:
    """The nginx binary; `make setup` installs it. Skips only when this machine has none (fails where
    INFERLOAD_REQUIRE names nginx)."""
    need("nginx")
    return nginx_binary()


class ReplicaPairs:
    """At most one running pair of replicas (two of one server behind nginx, round robin), started by
    serving.replicas: asking for another server's pair stops the running one first."""

    def __init__(self) -> None:
        self.running: tuple[ReplicatedServers, Ports] | None = None

    def get(self, server: str, artifacts: ArtifactLayout,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplicatedServers, Ports]:
        if self.running is not None and self.running[0].server != server:
            self.stop()
        if self.running is None:
            ports = Ports.free()
            servers = up_replicated(artifacts.root, server=server, settings=ServerSettings(), ports=ports,
                                    state_dir=tmp_path_factory.mktemp(f"{server}-replicas"),
                                    topology=Topology(replicas=2, balancer="nginx"), timeout_s=300)
            self.running = (servers, ports)
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            servers, _ = self.running
            self.running = None
            servers.down()


PAIRS = ReplicaPairs()


@pytest.fixture(scope="session", params=["tfserving", "torchserve"])
def replica_server(request: pytest.FixtureRequest) -> str:
    """Which server's pair a test gets; session-scoped so that pytest runs the tests of every module that
    uses `replica_pair` grouped by server, and one start per server serves them all."""
    return str(request.param)


@pytest.fixture
def replica_pair(replica_server: str, nginx: str, small_artifacts: ArtifactLayout,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplicatedServers, Ports]:
    """Two replicas of one server behind nginx and the front ports. Starting replicas takes seconds on 2
    cores, nginx milliseconds: the modules that only send requests share one pair per server and put the
    nginx they need in front (`topology_helpers.front`). The pair stops after the last test using it."""
    return PAIRS.get(replica_server, small_artifacts, tmp_path_factory)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared pair as soon as the next test does not use it (not at the end of the session)."""
    if "replica_pair" in getattr(item, "fixturenames", ()) and (
            nextitem is None or "replica_pair" not in getattr(nextitem, "fixturenames", ())):
        PAIRS.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    PAIRS.stop()
