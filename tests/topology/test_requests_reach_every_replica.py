"""Requests through nginx reach every replica (REAL servers, REAL nginx, small model).

Per-replica counts come from each replica's own Prometheus metrics (the servers count what they
served), for REST and gRPC and both balancing policies; nginx's access log must agree on who answered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from topology_helpers import bodies, predict_count, send

from models.artifacts import ArtifactLayout
from serving import balancer as nginx
from serving.ports import Ports
from serving.replicas import FRONT_FIELDS, ReplicatedServers, Topology, up_replicated
from serving.settings import ServerSettings

pytestmark = [pytest.mark.servers, pytest.mark.slow]
REQUESTS = 12  # per protocol and policy: enough that round robin gives each of 2 replicas several


@pytest.fixture(scope="module", params=["tfserving", "torchserve"])
def replicated(request: pytest.FixtureRequest, nginx: str, small_artifacts: ArtifactLayout,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReplicatedServers, Ports]]:
    """Two replicas of one server behind nginx (round robin), started by serving.replicas."""
    server = request.param
    ports = Ports.free()
    servers = up_replicated(small_artifacts.root, server=server, settings=ServerSettings(), ports=ports,
                            state_dir=tmp_path_factory.mktemp(f"{server}-replicas"),
                            topology=Topology(replicas=2, balancer="nginx"), timeout_s=300)
    try:
        yield servers, ports
    finally:
        servers.down()


def _restart_nginx(servers: ReplicatedServers, policy: str) -> None:
    """The same replicas behind a new nginx with `policy` (nginx starts in a second; servers do not)."""
    assert servers.balancer is not None
    old = servers.balancer
    old.stop()
    settings = nginx.BalancerSettings(**{**old.settings.__dict__, "policy": policy})
    servers.balancer = nginx.start(settings, old.prefix.parent / f"nginx-{policy}")


@pytest.mark.parametrize("policy", ["round_robin", "least_conn"])
@pytest.mark.parametrize("protocol", ["rest-binary", "grpc"])
def test_every_replica_serves(replicated: tuple[ReplicatedServers, Ports], policy: str,
                              protocol: str) -> None:
    servers, ports = replicated
    server = servers.server
    if servers.balancer is None or servers.balancer.settings.policy != policy:
        _restart_nginx(servers, policy)
    assert servers.balancer is not None
    log_start = servers.balancer.access_log.stat().st_size if servers.balancer.access_log.exists() else 0
    before = [predict_count(stack, server) for stack in servers.stacks]

    rest_field, grpc_field = FRONT_FIELDS[server]
    front = getattr(ports, grpc_field if protocol == "grpc" else rest_field)
    outcomes = send(server, protocol, front, bodies(server, protocol, REQUESTS))

    assert [o.status for o in outcomes] == ["ok"] * REQUESTS, [o.error for o in outcomes if o.error]
    served = [predict_count(stack, server) - b for stack, b in zip(servers.stacks, before, strict=True)]
    assert sum(served) == REQUESTS, f"the replicas counted {served}, the client sent {REQUESTS}"
    assert all(count >= 1 for count in served), f"a replica got nothing: {served}"
    if policy == "round_robin":  # one client, one request at a time: strict alternation
        assert served == [REQUESTS / 2, REQUESTS / 2]
    logged = nginx.requests_per_upstream(nginx.read_access_log(servers.balancer.access_log, since=log_start))
    upstream_ports = sorted(int(address.rsplit(":", 1)[1]) for address in logged)
    field = grpc_field if protocol == "grpc" else rest_field
    assert upstream_ports == sorted(getattr(stack.ports, field) for stack in servers.stacks)
    assert sum(logged.values()) == REQUESTS
    assert servers.alive(server)


def test_monitored_names_each_replica_and_nginx(replicated: tuple[ReplicatedServers, Ports]) -> None:
    servers, _ = replicated
    names = [entry.name for entry in servers.monitored()]
    assert names == [f"{servers.server}-1", f"{servers.server}-2", "nginx"]
    assert all(entry.pid for entry in servers.monitored())
