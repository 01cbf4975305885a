"""One map says which port each server answers each protocol on (REST-JSON and REST-binary share the
REST API's port) and where it describes its model: the runner, the targets, compose and the replicas'
balancer all read it."""

from __future__ import annotations

import pytest

from serving.ports import Ports

PORTS = Ports()  # the standard ports of docker-compose.yml


@pytest.mark.parametrize(
    ("server", "protocol", "port"),
    [
        ("tfserving", "rest-json", 8501),
        ("tfserving", "rest-binary", 8501),
        ("tfserving", "grpc", 8500),
        ("torchserve", "rest-json", 8080),
        ("torchserve", "rest-binary", 8080),
        ("torchserve", "grpc", 7070),
    ],
)
def test_each_server_and_protocol_has_one_port(server: str, protocol: str, port: int) -> None:
    assert PORTS.serving_port(server, protocol) == port


@pytest.mark.parametrize(("server", "port"), [("tfserving", 8501), ("torchserve", 8081)])
def test_the_model_is_described_on_the_metadata_port(server: str, port: int) -> None:
    assert PORTS.metadata_port(server) == port


def test_an_unknown_server_is_named() -> None:
    with pytest.raises(ValueError, match="unknown server 'nginx'"):
        PORTS.serving_port("nginx", "grpc")
