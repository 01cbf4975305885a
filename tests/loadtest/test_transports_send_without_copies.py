"""The transports' fast paths keep their contract: the exact bytes go out, every answer and every
failure comes back as an Outcome to the greenlet that sent it.

HTTP sends head and body with one sendmsg (no concatenated copy); gRPC, where threads are real
(the load worker, and this test process), runs grpc.aio on a thread of its own and hands results
back to the sending greenlets. Real servers on loopback: the standard library's HTTP server and a
grpcio server with a generic handler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gevent
import gevent.socket
import grpc
import pytest

from loadtest._transports import GrpcTransport, HttpTransport, _send_parts

METHOD = "/test.Echo/Call"


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
    server = CountingServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


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


# -- gRPC against a real server ------------------------------------------------------------------
def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"fail":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the input has the wrong width")
    if request == b"slow":
        time.sleep(2.0)
    return b"echo:" + request


class AnyMethod(grpc.GenericRpcHandler):
    def service(self, handler_call_details: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(echo)


@pytest.fixture
def grpc_port() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((AnyMethod(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def test_grpc_runs_on_its_own_thread_where_threads_are_real(grpc_port: int) -> None:
    transport = GrpcTransport("127.0.0.1", grpc_port, METHOD, timeout_s=30)
    try:
        assert transport._aio is not None  # this process is not monkey-patched: the aio thread path
        transport.prime()
        outcome = transport.send(b"x" * 1000)
    finally:
        transport.close()
    assert (outcome.status, outcome.code, outcome.bytes_in, outcome.error) == ("ok", 0, 1005, None)


def test_concurrent_grpc_calls_each_get_their_own_answer(grpc_port: int) -> None:
    transport = GrpcTransport("127.0.0.1", grpc_port, METHOD, timeout_s=30)
    assert transport._aio is not None
    bodies = [f"request {k}".encode() * (k + 1) for k in range(50)]
    before = time.monotonic_ns()
    try:
        greenlets = [gevent.spawn(transport._aio.call, body, 30) for body in bodies]
        gevent.joinall(greenlets, timeout=60, raise_error=True)
    finally:
        transport.close()
    assert [g.value[1:] for g in greenlets] == [(b"echo:" + body, None) for body in bodies]
    assert all(g.value[0] >= before for g in greenlets)  # started by the thread, after it was handed over


def test_a_grpc_outcome_says_when_the_thread_really_started_the_call(grpc_port: int) -> None:
    transport = GrpcTransport("127.0.0.1", grpc_port, METHOD, timeout_s=30)
    try:
        before = time.monotonic_ns()
        outcome = transport.send(b"x")
        after = time.monotonic_ns()
        failed = transport.send(b"fail")
    finally:
        transport.close()
    assert before <= outcome.sent_ns <= after
    assert failed.status == "error" and failed.sent_ns >= after  # failures carry it too


@pytest.mark.parametrize(
    ("body", "timeout_s", "status", "code", "error_start"),
    [
        (b"fail", 30.0, "error", 3, "INVALID_ARGUMENT: the input has the wrong width"),
        (b"slow", 0.3, "timeout", 4, "DEADLINE_EXCEEDED"),
    ],
)
def test_grpc_failures_come_back_as_records(grpc_port, body, timeout_s, status, code, error_start) -> None:
    transport = GrpcTransport("127.0.0.1", grpc_port, METHOD, timeout_s=timeout_s)
    try:
        outcome = transport.send(body)
        after = transport.send(b"ok")  # the transport keeps working after a failure
    finally:
        transport.close()
    assert (outcome.status, outcome.code) == (status, code)
    assert (outcome.error or "").startswith(error_start)
    assert after.status == "ok"
