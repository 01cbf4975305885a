"""Ports: standard defaults, free loopback ports for tests, and naming who holds a busy port."""

from __future__ import annotations

import os
import socket

import pytest

from serving.ports import PORT_FLOOR, Ports, busy_ports, free_ports, is_free

STANDARD = {8500, 8501, 8080, 8081, 8082, 7070, 7071, 8000, 8001, 8002}


def test_defaults_are_the_standard_ports() -> None:
    assert Ports().to_dict() == {
        "tfserving_grpc": 8500,
        "tfserving_rest": 8501,
        "torchserve_inference": 8080,
        "torchserve_management": 8081,
        "torchserve_metrics": 8082,
        "torchserve_grpc": 7070,
        "torchserve_grpc_management": 7071,
        "triton_http": 8000,
        "triton_grpc": 8001,
        "triton_metrics": 8002,
    }


def test_free_ports_are_distinct_bindable_and_never_standard() -> None:
    ports = Ports.free().to_dict().values()
    assert len(set(ports)) == 10
    assert not STANDARD & set(ports)
    assert all(is_free(port) for port in ports)


@pytest.mark.parametrize(
    ("server", "roles"),
    [
        ("tfserving", {"tfserving_grpc", "tfserving_rest"}),
        (
            "torchserve",
            {
                "torchserve_inference",
                "torchserve_management",
                "torchserve_metrics",
                "torchserve_grpc",
                "torchserve_grpc_management",
            },
        ),
        ("triton", {"triton_http", "triton_grpc", "triton_metrics"}),
    ],
)
def test_ports_of_one_server(server: str, roles: set[str]) -> None:
    assert set(Ports().of(server)) == roles


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tfserving_rest": 0}, "tfserving_rest must be an integer port number"),
        ({"torchserve_grpc": 70000}, "torchserve_grpc must be an integer port number"),
        ({"tfserving_rest": 8500}, "must all differ"),
    ],
)
def test_bad_ports_are_refused_with_the_field_named(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ports(**kwargs)


def test_busy_port_is_reported_with_its_owner_pid() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        busy = busy_ports([port])
    assert len(busy) == 1
    assert busy[0][0] == port
    assert f"pid {os.getpid()}" in busy[0][1]


def test_a_free_port_is_not_reported() -> None:
    port = Ports.free().tfserving_rest
    assert busy_ports([port]) == []


def test_free_ports_come_from_below_the_ephemeral_range_where_no_outgoing_connection_takes_them() -> None:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    if low - PORT_FLOOR < 1_000:
        pytest.skip(f"the ephemeral range starts at {low}: the kernel picks free ports here")
    assert all(PORT_FLOOR <= port < low for port in Ports.free().to_dict().values())


def test_a_port_handed_out_is_not_handed_out_again_while_its_server_may_still_be_starting() -> None:
    """Two stacks started at once (two test workers, two runs): free but unbound ports are claimed, so
    the second never gets the first's."""
    first = set(free_ports(1_000))  # drawn at random: two unclaimed draws would share ~44 ports
    second = set(free_ports(1_000))
    assert len(first) == len(second) == 1_000
    assert not first & second
