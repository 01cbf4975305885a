"""gRPC transport cases that need real threads: grpc.aio on a thread of its own (the load worker's path).

Run by test_transports_send_without_copies.py in a fresh interpreter: once any test in the suite has
imported Locust, gevent has patched threading in that process and the transport takes the blocking
path instead, so these cases would not test what they name. Real grpcio server on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import gevent
import grpc
import pytest
from gevent import monkey

from loadtest._transports import GrpcTransport

METHOD = "/test.Echo/Call"
assert not monkey.is_module_patched("threading"), "run these cases in an interpreter gevent has not patched"


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
