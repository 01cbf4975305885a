"""LoadSettings refuse bad input with a message that names the field and the fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferload_formats import PROTOCOLS, SERVERS
from loadtest import LoadSettings, describe_validation_error
from serving.ports import Ports

BASE = {"server": "torchserve", "protocol": "grpc", "rate": 10.0, "duration_s": 1.0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"server": "mlserver"}, "server: 'mlserver' is not one of the allowed values"),
        ({"protocol": "soap"}, "protocol: 'soap' is not one of the allowed values"),
        ({"rate": 0}, "rate: Input should be greater than 0"),
        ({"rate": -3}, "rate: Input should be greater than 0"),
        ({"duration_s": 0}, "duration_s: Input should be greater than 0"),
        ({"host": "bad host"}, "is not a host name or IP address"),
        ({"host": "ftp://10.1.2.3:8501"}, "scheme 'ftp' is not supported"),
        ({"host": "http://10.1.2.3:8501", "security": {"tls": True}}, "says plaintext, but TLS is on"),
        ({"rate": None}, "open-loop mode needs a target rate"),
        ({"mode": "closed", "rate": None}, "closed-loop mode needs concurrency"),
        ({"concurrency": 4}, "not both"),
        ({"batch": 0}, "batch: Input should be greater than or equal to 1"),
        ({"rtae": 5}, "rtae: unknown setting"),
    ],
)
def test_bad_settings_name_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LoadSettings(**{**BASE, **changes})
    assert message in describe_validation_error(caught.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("server", SERVERS)
def test_port_defaults_to_the_standard_one(server: str, protocol: str) -> None:
    """The standard ports of docker-compose.yml, as the port map has them (tests/serving/test_port_map.py)."""
    assert LoadSettings(**{**BASE, "server": server, "protocol": protocol}).resolved_port == (
        Ports().serving_port(server, protocol)
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "10.1.2.3", "example.com"])
def test_any_host_name_or_address_is_accepted(host: str) -> None:
    assert LoadSettings(**{**BASE, "host": host}).host == host


def test_pool_is_capped_by_its_memory_budget() -> None:
    """Full-size JSON batch 64: ~14 B/value x 262,144 x 64 = 224 MiB per body > 512 MiB / 16."""
    big = LoadSettings(**{**BASE, "protocol": "rest-json", "batch": 64, "features": 262_144})
    assert big.effective_pool_size == 2
    huge = LoadSettings(**{**BASE, "protocol": "rest-json", "batch": 1024, "features": 262_144})
    assert huge.effective_pool_size == 1
    small = LoadSettings(**{**BASE, "features": 1024})
    assert small.effective_pool_size == 16


def test_resolved_settings_echo_the_port_used() -> None:
    resolved = LoadSettings(**BASE).resolved()
    assert resolved["port"] == 7070 and resolved["effective_pool_size"] == 16
