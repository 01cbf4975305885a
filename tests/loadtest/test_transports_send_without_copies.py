"""The transports' fast paths keep their contract: the exact bytes go out, every answer and every
failure comes back as an Outcome to the greenlet that sent it.

The gevent HTTP transport (Locust users) sends head and body with one sendmsg (no concatenated
copy); the asyncio transports (load workers) are checked in a fresh interpreter
(aio_transport_cases.py). Real servers on loopback: the standard library's HTTP server and a grpcio
server with a generic handler.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gevent
import gevent.socket
import pytest
from threaded_http import serving

from loadtest._transports import HttpTransport, _send_parts


def test_head_and_body_arrive_whole_even_when_the_socket_takes_them_in_pieces() -> None:
    head = b"POST /x HTTP/1.1\r\nContent-Length: 3145728\r\n\r\n"
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB: far more than one send takes
    left, right = gevent.socket.socketpair()
    left.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_SNDBUF, 4096)
    received = bytearray()

    def read_all() -> None:
        while len(received) < len(head) + len(body):
            chunk = right.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    reader = gevent.spawn(read_all)
    _send_parts(left, head, body)
    reader.join(timeout=60)
    left.close()
    right.close()
    assert bytes(received) == head + body


# -- HTTP against a real server ------------------------------------------------------------------
class Recorder(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    connections = 0  # accepted by the server, requests or not

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.bodies.append(body)
        status = 413 if self.path == "/too-big" else 200
        answer = b"request entity too large" if status == 413 else b"answer:" + str(len(body)).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Cache-Status", "HIT")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


class CountingServer(ThreadingHTTPServer):
    def process_request(self, request: Any, client_address: Any) -> None:
        Recorder.connections += 1
        super().process_request(request, client_address)


@pytest.fixture
def http_port() -> Iterator[int]:
    Recorder.protocol_version = "HTTP/1.1"  # keep-alive, as the servers under test
    Recorder.bodies = []
    Recorder.connections = 0
    with serving(CountingServer(("127.0.0.1", 0), Recorder)) as port:
        yield port


def test_http_posts_the_exact_body_and_reads_the_answer_on_a_kept_alive_connection(http_port: int) -> None:
    transport = HttpTransport("127.0.0.1", http_port, "/predict", "application/octet-stream",
                              timeout_s=30, pool=2)
    bodies = [b"\x00\x01" * 100, bytes(range(256)) * 4096, b"\x00\x01" * 100]
    try:
        outcomes = [transport.send(body) for body in bodies]
    finally:
        transport.close()
    assert Recorder.bodies == bodies
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert [o.code for o in outcomes] == [200, 200, 200]
    assert [o.bytes_in for o in outcomes] == [len(b"answer:" + str(len(b)).encode()) for b in bodies]
    assert {o.cache for o in outcomes} == {"hit"}


def test_priming_opens_the_connection_the_requests_then_use(http_port: int) -> None:
    transport = HttpTransport("127.0.0.1", http_port, "/predict", "application/octet-stream",
                              timeout_s=30, pool=4)
    try:
        transport.prime()
        outcomes = [transport.send(b"body") for _ in range(3)]
    finally:
        transport.close()
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert Recorder.connections == 1  # one kept-alive connection, opened before the schedule


def test_an_http_error_status_is_an_error_record_with_the_servers_text(http_port: int) -> None:
    transport = HttpTransport("127.0.0.1", http_port, "/too-big", "application/json", timeout_s=30, pool=1)
    try:
        outcome = transport.send(b"{}")
    finally:
        transport.close()
    assert (outcome.status, outcome.code, outcome.error) == ("error", 413, "request entity too large")


def test_an_unreachable_http_server_is_an_error_record_not_a_crash() -> None:
    with gevent.socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        transport = HttpTransport("127.0.0.1", port, "/predict", "application/json", timeout_s=5, pool=1)
        outcome = transport.send(b"{}")
        transport.close()
    assert outcome.status == "error" and "ConnectionRefused" in (outcome.error or "")


# -- the asyncio engine's transports ---------------------------------------------------------------
AIO_CASES = Path(__file__).with_name("aio_transport_cases.py")


def test_the_asyncio_transports_in_an_interpreter_gevent_has_not_patched() -> None:
    """aio_transport_cases.py in a fresh interpreter, as the load worker runs them: in this one, an
    earlier Locust import may have patched sockets and threads and set up grpcio's gevent mode."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(AIO_CASES), "-q", "-p", "no:cacheprovider"],
        cwd=AIO_CASES.parents[2], capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"^18 passed", done.stdout, re.MULTILINE), done.stdout[-2000:]
