"""A reachability probe that times out is asked again (a lossy network loses probes); a refused one is
not (nothing listens there). A real loopback server that never answers its first connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from loopback import loopback_server

from loadtest import _health
from loadtest._health import TargetTimedOut, TargetUnreachable, preflight
from loadtest._settings import LoadSettings

PING = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


@contextmanager
def swallowing_server(swallowed: int) -> Iterator[tuple[int, list[float]]]:
    """Accepts connections on loopback; the first `swallowed` HTTP requests get no answer (as if lost),
    the rest an HTTP 200; a TLS hello (the probe for a TLS port after a timeout) is closed at once, as a
    plaintext server would. Yields the port and the times the HTTP requests came in."""
    accepted: list[float] = []
    held: list[socket.socket] = []

    def answer(connection: socket.socket) -> None:
        connection.settimeout(2.0)
        try:
            first = connection.recv(65536)
        except TimeoutError:
            first = b""
        if not first.startswith(b"GET "):
            connection.close()
            return
        accepted.append(time.monotonic())
        if len(accepted) <= swallowed:
            held.append(connection)  # never answered, closed at the end
            return
        with connection:
            connection.sendall(PING)

    try:
        with loopback_server(answer) as port:
            yield port, accepted
    finally:
        for connection in held:
            connection.close()


def settings(port: int) -> LoadSettings:
    return LoadSettings(server="torchserve", protocol="rest-json", port=port, rate=10, duration_s=1,
                        features=8)


@pytest.fixture
def model_checks_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only reachability is under test: the model description and credential checks are stubbed."""
    monkeypatch.setattr(_health, "check_served_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(_health, "check_credentials", lambda *args, **kwargs: None)


def test_a_probe_lost_once_is_asked_again(model_checks_pass: None) -> None:
    with swallowing_server(swallowed=1) as (port, accepted):
        preflight(settings(port), timeout_s=0.3)
    assert len(accepted) == 2 and accepted[1] - accepted[0] >= 0.3


def test_a_target_that_never_answers_is_unreachable_after_the_last_attempt(model_checks_pass: None) -> None:
    with swallowing_server(swallowed=99) as (port, accepted), pytest.raises(TargetTimedOut) as error:
        preflight(settings(port), timeout_s=0.2)
    assert len(accepted) == _health.REACH_ATTEMPTS
    assert f"127.0.0.1:{port}" in str(error.value)


def test_a_refused_connection_is_not_retried(model_checks_pass: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _health.check_reachable

    def counting(*args: object, **kwargs: object) -> None:
        calls.append(1)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_health, "check_reachable", counting)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(TargetUnreachable) as error:
            preflight(settings(port), timeout_s=0.5)
    assert not isinstance(error.value, TargetTimedOut) and calls == [1]
