"""The HTTP transport's check of a pooled kept-alive socket: same verdicts as geventhttpclient's own
(alive only when open and nothing is waiting to be read while idle), without yielding to the hub.

Real sockets (a socketpair), and a real pool: a connection the server closed while idle is
replaced before the next request, never sent on.
"""

from __future__ import annotations

import select
from collections.abc import Callable

import gevent
import gevent.select
import gevent.socket
import pytest
from gevent.server import StreamServer
from geventhttpclient.connectionpool import ConnectionPool

from loadtest._transports import HttpTransport, _idle_socket_alive


@pytest.fixture
def pair() -> tuple[gevent.socket.socket, gevent.socket.socket]:
    left, right = gevent.socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_an_idle_open_socket_is_alive(pair: tuple[gevent.socket.socket, gevent.socket.socket]) -> None:
    assert _idle_socket_alive(pair[0]) is True


def test_a_socket_whose_peer_closed_is_dead(pair: tuple[gevent.socket.socket, gevent.socket.socket]) -> None:
    pair[1].close()
    assert _idle_socket_alive(pair[0]) is False


def test_a_socket_with_stray_bytes_waiting_is_dead(
    pair: tuple[gevent.socket.socket, gevent.socket.socket],
) -> None:
    pair[1].sendall(b"HTTP/1.1 200 OK\r\n")  # an answer nobody asked for: the connection is out of step
    assert _idle_socket_alive(pair[0]) is False


def test_a_closed_socket_or_none_is_dead(pair: tuple[gevent.socket.socket, gevent.socket.socket]) -> None:
    pair[0].close()
    assert _idle_socket_alive(pair[0]) is False
    assert _idle_socket_alive(None) is False


def yields(check: Callable[[], object]) -> bool:
    ran: list[bool] = []
    other = gevent.spawn(ran.append, True)  # runs at the next switch to the hub
    check()
    yielded = ran == [True]
    other.join(timeout=10)
    return yielded


def test_the_check_does_not_yield_to_other_greenlets_where_select_is_gevents(
    pair: tuple[gevent.socket.socket, gevent.socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(select, "select", gevent.select.select)  # as the load worker's patch_all does
    assert yields(lambda: ConnectionPool._is_socket_alive(None, pair[0]))  # type: ignore[arg-type]  # the library's
    assert not yields(lambda: _idle_socket_alive(pair[0]))


def test_a_connection_the_server_closed_while_idle_is_replaced_not_used() -> None:
    connections: list[int] = []

    def answer_once_then_close(sock: gevent.socket.socket, address: object) -> None:
        connections.append(1)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length")))
        while len(body) < length:
            body += sock.recv(65536)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        sock.close()  # without Connection: close: the client keeps the socket and finds it closed later

    server = StreamServer(("127.0.0.1", 0), answer_once_then_close)
    server.start()
    transport = HttpTransport(
        "127.0.0.1", server.server_port, "/x", "application/octet-stream", timeout_s=30.0, pool=1
    )
    try:
        first = transport.send(b"abc")
        gevent.sleep(0.2)  # the server's FIN reaches the idle pooled socket
        second = transport.send(b"def")
    finally:
        transport.close()
        server.stop()
    assert (first.status, second.status) == ("ok", "ok")
    assert len(connections) == 2
