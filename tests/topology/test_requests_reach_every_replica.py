"""Requests through nginx reach every replica (REAL servers, REAL nginx, small model).

Per-replica counts come from each replica's own Prometheus metrics (the servers count what they
served), for REST and gRPC and both balancing policies; nginx's access log must agree on who answered.
"""

from __future__ import annotations

import pytest
from topology_helpers import bodies, front, predict_count, send

from serving import balancer as nginx
from serving.ports import Ports
from serving.replicas import FRONT_FIELDS, ReplicatedServers

pytestmark = [pytest.mark.servers, pytest.mark.slow]
REQUESTS = 12  # per protocol and policy: enough that round robin gives each of 2 replicas several


@pytest.mark.parametrize("policy", ["round_robin", "least_conn"])
@pytest.mark.parametrize("protocol", ["rest-binary", "grpc"])
def test_every_replica_serves(replica_pair: tuple[ReplicatedServers, Ports], policy: str,
                              protocol: str) -> None:
    servers, ports = replica_pair
    server = servers.server
    front(servers, policy=policy)  # a fresh nginx with this policy in front of the same replicas
    assert servers.balancer is not None
    log_start = servers.balancer.access_log.stat().st_size if servers.balancer.access_log.exists() else 0
    before = [predict_count(stack, server) for stack in servers.stacks]

    rest_field, grpc_field = FRONT_FIELDS[server]
    front_port = getattr(ports, grpc_field if protocol == "grpc" else rest_field)
    outcomes = send(server, protocol, front_port, bodies(server, protocol, REQUESTS))

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


def test_monitored_names_each_replica_and_nginx(replica_pair: tuple[ReplicatedServers, Ports]) -> None:
    servers, _ = replica_pair
    names = [entry.name for entry in servers.monitored()]
    assert names == [f"{servers.server}-1", f"{servers.server}-2", "nginx"]
    assert all(entry.pid for entry in servers.monitored())
