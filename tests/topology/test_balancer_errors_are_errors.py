"""nginx's own error responses (502/504 when a replica is gone) are error records, never latencies."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from topology_helpers import bodies, send

from serving import balancer
from serving.balancer import BalancerSettings, Upstream
from serving.ports import Ports

pytestmark = pytest.mark.servers  # each test starts an nginx


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_front_of_a_dead_replica(ports: Ports) -> BalancerSettings:
    """nginx on `ports`' TF Serving ports, with one upstream (REST and gRPC) where nothing listens."""
    dead = (Upstream("127.0.0.1", closed_port()),)
    return BalancerSettings(rest_port=ports.tfserving_rest, grpc_port=ports.tfserving_grpc,
                            rest_upstreams=dead, grpc_upstreams=dead)


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_dead_replica_behind_nginx_gives_error_records(nginx: str, tmp_path: Path, protocol: str) -> None:
    ports = Ports.free()
    settings = in_front_of_a_dead_replica(ports)
    running = balancer.start(settings, tmp_path / "nginx")
    try:
        port = ports.tfserving_grpc if protocol == "grpc" else ports.tfserving_rest
        outcomes = send("tfserving", protocol, port, bodies("tfserving", protocol, 2))
    finally:
        running.stop()
    assert [o.status for o in outcomes] == ["error", "error"]
    if protocol == "grpc":  # nginx maps 502 to gRPC UNAVAILABLE (14)
        assert {o.code for o in outcomes} == {14}
    else:
        assert {o.code for o in outcomes} <= set(balancer.BALANCER_ERRORS)
    assert not running.alive()


def test_an_nginx_left_behind_by_a_killed_run_is_stopped_first(nginx: str, tmp_path: Path) -> None:
    import os
    import signal

    settings = in_front_of_a_dead_replica(Ports.free())
    first = balancer.start(settings, tmp_path / "nginx")
    try:
        second = balancer.start(settings, tmp_path / "nginx")  # a killed runner: same prefix and ports
        assert second.alive() and not first.alive()
        second.stop()
    finally:
        if first.alive():
            os.kill(first.pid, signal.SIGKILL)
