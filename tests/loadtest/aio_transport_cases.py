"""The asyncio engine's transports (`inferload load` workers) against real servers on loopback: the
exact bytes go out with what the spec says (path, content type, headers; gRPC method, metadata), and
every answer and every failure comes back as an Outcome.

Run by test_transports_send_without_copies.py in a fresh interpreter: an earlier Locust import in
the suite's process monkey-patches sockets and threads and sets up grpcio's gevent integration,
which the load worker (one asyncio loop, no gevent) never has. Servers: the standard library's HTTP
server and a grpcio server with a generic handler.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from gevent import monkey
from threaded_http import serving

from loadtest._aio_engine import new_loop
from loadtest._aio_transports import AioGrpcTransport, AioHttpTransport, make_aio_transport
from loadtest._core import Ticket
from loadtest._h2grpc import H2GrpcTransport
from loadtest._security import Credentials, Security
from loadtest._spec import TransportSpec
from loadtest._transports import Outcome

assert not monkey.is_module_patched("socket"), "run these cases in an interpreter gevent has not patched"


def exchange(transport: Any, loop: asyncio.AbstractEventLoop, bodies: list[bytes], *, prime: bool = False,
             close: bool = True, stall_s: float = 0.0) -> list[Outcome]:
    """Start every body at once on the loop; each request's Outcome, in the order of `bodies`.
    `stall_s`: once the requests are out, the loop's thread is blocked that long (a busy machine's stall)."""
    outcomes: dict[int, Outcome] = {}

    async def run() -> None:
        if prime:
            await transport.prime()
        finished = loop.create_future()

        def done(ticket: Ticket, outcome: Outcome) -> None:
            outcomes[ticket.seq] = outcome
            if len(outcomes) == len(bodies):
                finished.set_result(None)

        for seq, body in enumerate(bodies):
            transport.start(body, Ticket(seq, time.monotonic_ns()), done)
        if stall_s:  # the primed connection has sent the requests; their answers arrive meanwhile
            time.sleep(stall_s)
        await asyncio.wait_for(finished, 60)
        if close:
            await transport.close()

    loop.run_until_complete(run())
    return [outcomes[seq] for seq in range(len(bodies))]


# -- HTTP ------------------------------------------------------------------------------------------
class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers under test
    requests: list[tuple[str, dict[str, str], bytes]] = []
    connections = 0

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.requests.append((self.path, dict(self.headers), body))
        if self.path == "/slow":
            time.sleep(1.0)
        status = 413 if self.path == "/too-big" else 200
        answer = b"request entity too large" if status == 413 else b"answer:" + str(len(body)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("X-Cache-Status", "HIT")
            self.end_headers()
            self.wfile.write(answer)
        except BrokenPipeError:
            pass  # /slow: the client timed out and closed first

    def log_message(self, *args: Any) -> None:
        pass


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        Recorder.connections += 1
        super().process_request(request, client_address)


@pytest.fixture
def http_port() -> Iterator[int]:
    Recorder.requests = []
    Recorder.connections = 0
    with serving(CountingServer(("127.0.0.1", 0), Recorder)) as port:
        yield port


def http(port: int, path: str = "/predict", **overrides: Any) -> tuple[AioHttpTransport, Any]:
    values: dict[str, Any] = {"kind": "http", "host": "127.0.0.1", "port": port, "timeout_s": 30.0, "pool": 4,
                              "path": path, "content_type": "application/octet-stream"}
    values.update(overrides)
    loop = new_loop()
    return AioHttpTransport(TransportSpec(**values), loop), loop


def test_http_posts_the_exact_bodies_as_the_spec_says_and_reads_each_answer(http_port: int) -> None:
    credentials = Credentials(inference_headers=(("Authorization", "Bearer t0ken"),))
    transport, loop = http(http_port, credentials=credentials)
    bodies = [b"\x00\x01" * 100, bytes(range(256)) * 4096, b"\x00\x01" * 100]
    outcomes = exchange(transport, loop, bodies)
    assert sorted(body for _, _, body in Recorder.requests) == sorted(bodies)
    assert {path for path, _, _ in Recorder.requests} == {"/predict"}
    headers = Recorder.requests[0][1]
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Host"] == f"127.0.0.1:{http_port}"
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert [o.code for o in outcomes] == [200, 200, 200]
    assert [o.bytes_in for o in outcomes] == [len(b"answer:" + str(len(b)).encode()) for b in bodies]
    assert {o.cache for o in outcomes} == {"hit"}


def test_priming_opens_the_connection_that_requests_one_at_a_time_reuse(http_port: int) -> None:
    transport, loop = http(http_port)
    loop.run_until_complete(transport.prime())
    outcomes = []
    for last in (False, False, True):  # one at a time: the kept-alive connection serves them all
        outcomes += exchange(transport, loop, [b"body"], close=last)
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert Recorder.connections == 1


def test_an_http_error_status_is_an_error_record_with_the_servers_text(http_port: int) -> None:
    transport, loop = http(http_port, "/too-big")
    (outcome,) = exchange(transport, loop, [b"{}"])
    assert (outcome.status, outcome.code, outcome.error) == ("error", 413, "request entity too large")


def test_no_answer_within_the_timeout_is_a_timeout_record(http_port: int) -> None:
    transport, loop = http(http_port, "/slow", timeout_s=0.3)
    (outcome,) = exchange(transport, loop, [b"{}"])
    assert (outcome.status, outcome.code, outcome.error) == ("timeout", 0, "no response within 0.3 s")


def test_an_answer_read_only_after_its_deadline_is_a_timeout_never_a_latency(http_port: int) -> None:
    transport, loop = http(http_port, timeout_s=0.2)
    (outcome,) = exchange(transport, loop, [b"{}"], prime=True, stall_s=0.5)
    assert (outcome.status, outcome.error) == ("timeout", "no response within 0.2 s")


def test_an_unreachable_http_server_is_an_error_record_not_a_crash() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        transport, loop = http(port, pool=1)
        outcomes = exchange(transport, loop, [b"{}", b"{}"])
    assert {o.status for o in outcomes} == {"error"}
    assert all("ConnectionRefused" in (o.error or "") for o in outcomes)


# -- gRPC ------------------------------------------------------------------------------------------
METHOD = "/test.Echo/Call"
seen_metadata: list[dict[str, str]] = []


def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    seen_metadata.append(dict(context.invocation_metadata()))
    if request == b"missing":
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
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


@pytest.fixture(params=["h2", "grpc.aio"])
def client(request: pytest.FixtureRequest) -> str:
    """The asyncio engine's two gRPC clients: HTTP/2 framed by inferload, and grpc.aio; same records."""
    return str(request.param)


def grpc_transport(port: int, client: str, **overrides: Any) -> tuple[Any, Any]:
    values: dict[str, Any] = {"kind": "grpc", "host": "127.0.0.1", "port": port, "timeout_s": 30.0, "pool": 4,
                              "grpc_method": METHOD, "grpc_client": client}
    values.update(overrides)
    loop = new_loop()
    transport = make_aio_transport(TransportSpec(**values), loop)
    assert isinstance(transport, H2GrpcTransport if client == "h2" else AioGrpcTransport)
    return transport, loop


def test_concurrent_grpc_calls_each_get_their_own_answer_with_the_specs_metadata(
    grpc_port: int, client: str
) -> None:
    credentials = Credentials(inference_headers=(("X-Api-Key", "s3cret"),))
    transport, loop = grpc_transport(grpc_port, client, credentials=credentials)
    bodies = [f"request {k}".encode() * (k + 1) for k in range(50)] + [bytes(range(256)) * 8192]  # 2 MiB
    outcomes = exchange(transport, loop, bodies, prime=True)
    assert [(o.status, o.code, o.bytes_in, o.error) for o in outcomes] == [
        ("ok", 0, len(b"echo:" + body), None) for body in bodies
    ]
    assert all(m.get("x-api-key") == "s3cret" for m in seen_metadata[-len(bodies):])


@pytest.mark.parametrize(
    ("body", "timeout_s", "status", "code", "error_start"),
    [
        (b"fail", 30.0, "error", 3, "INVALID_ARGUMENT: the input has the wrong width"),
        (b"slow", 0.3, "timeout", 4, "DEADLINE_EXCEEDED"),
    ],
)
def test_grpc_failures_come_back_as_records(  # type: ignore[no-untyped-def]
    grpc_port, client, body, timeout_s, status, code, error_start
) -> None:
    transport, loop = grpc_transport(grpc_port, client, timeout_s=timeout_s)
    outcome, after = exchange(transport, loop, [body, b"ok"])  # the other call is unaffected
    assert (outcome.status, outcome.code) == (status, code)
    assert (outcome.error or "").startswith(error_start)
    assert after.status == "ok"


def test_a_grpc_answer_read_only_after_its_deadline_is_deadline_exceeded(grpc_port: int) -> None:
    """inferload's HTTP/2 client (grpc.aio sends only once the loop runs again, so it cannot be stalled
    between a call's send and its answer this way)."""
    transport, loop = grpc_transport(grpc_port, "h2", timeout_s=0.2)
    (outcome,) = exchange(transport, loop, [b"quick"], prime=True, stall_s=0.5)
    assert (outcome.status, outcome.code) == ("timeout", 4)


def test_an_unreachable_grpc_server_is_an_unavailable_record_not_a_crash(client: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        transport, loop = grpc_transport(port, client, timeout_s=5.0)
        outcomes = exchange(transport, loop, [b"a", b"b"])
    assert {(o.status, o.code) for o in outcomes} == {("error", 14)}
    assert all((o.error or "").startswith("UNAVAILABLE") for o in outcomes)


# -- TLS ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from serving.certs import make_tls_material

    return make_tls_material(tmp_path_factory.mktemp("tls"))


def test_grpc_over_mutual_tls_with_a_token_as_metadata(tls: Any, client: str) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((AnyMethod(),))
    server_credentials = grpc.ssl_server_credentials(
        [(tls.server.key.read_bytes(), tls.server.cert.read_bytes())],
        root_certificates=tls.ca_cert.read_bytes(), require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials)
    server.start()
    try:
        security = Security(tls=True, ca_cert=str(tls.ca_cert), client_cert=str(tls.client.cert),
                            client_key=str(tls.client.key))
        credentials = Credentials(inference_headers=(("Authorization", "Bearer t0ken-t0ken"),))
        transport, loop = grpc_transport(port, client, security=security, credentials=credentials)
        outcomes = exchange(transport, loop, [b"a" * 100, bytes(range(256)) * 4096, b"fail"])
    finally:
        server.stop(grace=None)
    assert [(o.status, o.code) for o in outcomes] == [("ok", 0), ("ok", 0), ("error", 3)]
    assert outcomes[1].bytes_in == len(b"echo:") + 256 * 4096
    assert seen_metadata[-1].get("authorization") == "Bearer t0ken-t0ken"


def test_https_with_the_servers_certificate_checked(tls: Any) -> None:
    import ssl

    server = CountingServer(("127.0.0.1", 0), Recorder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.server.cert), str(tls.server.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Recorder.requests = []
    with serving(server) as port:
        transport, loop = http(port, security=Security(tls=True, ca_cert=str(tls.ca_cert)))
        outcomes = exchange(transport, loop, [b"x" * 4096, b"y" * 10])
        untrusted, loop = http(port, security=Security(tls=True))  # the system's CAs: not ours
        refused = exchange(untrusted, loop, [b"z"])
    assert [(o.status, o.code) for o in outcomes] == [("ok", 200), ("ok", 200)]
    assert sorted(body for _, _, body in Recorder.requests) == [b"x" * 4096, b"y" * 10]
    assert refused[0].status == "error" and "CERTIFICATE_VERIFY_FAILED" in (refused[0].error or "")
