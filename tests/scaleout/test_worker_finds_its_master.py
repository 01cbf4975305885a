"""A Locust worker's master is read from its command line before Locust connects, and an unreachable
master is reported within the deadline, naming the address and what to check."""

from __future__ import annotations

import socket
import time

import pytest

from loadtest._master import DEFAULT_MASTER_TIMEOUT_S, MasterUnreachable, master_of_worker, wait_for_master

ARGS = [
    (["--worker"], {}, ("127.0.0.1", 5557, DEFAULT_MASTER_TIMEOUT_S)),
    (["-f", "loadtest/", "--worker", "--master-host", "198.18.0.1", "--master-port", "6000"], {},
     ("198.18.0.1", 6000, DEFAULT_MASTER_TIMEOUT_S)),
    (["--worker", "--master-host=10.0.0.5", "--master-timeout", "2"], {}, ("10.0.0.5", 5557, 2.0)),
    ([], {"LOCUST_MODE_WORKER": "true", "LOCUST_MASTER_NODE_HOST": "master"}, ("master", 5557, 60.0)),
    (["--master", "--headless"], {}, None),  # the master itself, not a worker
    (["--master-host", "10.0.0.5"], {}, None),  # a master host alone does not make a worker
    (["--worker", "--master-port", "many"], {}, None),  # malformed: left to Locust's own parser
    ([], {}, None),
]


@pytest.mark.parametrize(("argv", "environ", "expected"), ARGS)
def test_the_master_is_read_from_a_worker_command_line(argv, environ, expected) -> None:
    assert master_of_worker(argv, environ) == expected


def test_a_listening_master_is_found_at_once() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert wait_for_master("127.0.0.1", server.getsockname()[1], timeout_s=5) < 5


def test_an_unreachable_master_is_reported_after_the_deadline() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(MasterUnreachable) as caught:
        wait_for_master("127.0.0.1", port, timeout_s=1.0)
    assert 1.0 <= time.monotonic() - started < 10
    message = str(caught.value)
    assert f"cannot reach its master at 127.0.0.1:{port}" in message
    assert "start the master first" in message and "--master-host" in message
