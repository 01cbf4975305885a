"""Every generator gRPC channel is built with loadtest._transports.GRPC_CHANNEL_OPTIONS, on both paths.

The list is the one place the generator's channel options live (benchmarks/generator_cpu.py
extends it to measure an option before it becomes a default), so both transports must use it
as it is at the time the channel is made.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from gevent import monkey

from loadtest import _grpc_thread, _transports

EXTRA = ("grpc.http2.bdp_probe", 0)


@pytest.fixture
def extra_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_transports, "GRPC_CHANNEL_OPTIONS", [*_transports.GRPC_CHANNEL_OPTIONS, EXTRA])


@pytest.mark.parametrize("threads_patched", [False, True], ids=["aio-thread", "blocking-under-gevent"])
def test_the_channel_gets_the_module_options(
    monkeypatch: pytest.MonkeyPatch, extra_option: None, threads_patched: bool
) -> None:
    made: list[tuple[str, list[tuple[str, Any]]]] = []

    class FakeAioThread:
        def __init__(self, target: str, method: str, *, options: list[tuple[str, Any]]) -> None:
            made.append((target, options))

    class FakeChannel:
        def unary_unary(self, *args: Any, **kwargs: Any) -> None:
            return None

    def fake_insecure_channel(target: str, options: list[tuple[str, Any]]) -> FakeChannel:
        made.append((target, options))
        return FakeChannel()

    monkeypatch.setattr(monkey, "is_module_patched", lambda name: threads_patched)
    monkeypatch.setattr(_grpc_thread, "AioGrpcThread", FakeAioThread)
    monkeypatch.setattr(grpc, "insecure_channel", fake_insecure_channel)

    _transports.GrpcTransport("127.0.0.1", 9, _transports.TFSERVING_PREDICT, timeout_s=1.0)

    assert made == [("127.0.0.1:9", _transports.GRPC_CHANNEL_OPTIONS)]
    assert EXTRA in made[0][1]


def test_the_default_options_let_the_servers_decide_what_is_too_big() -> None:
    options = dict(_transports.GRPC_CHANNEL_OPTIONS)
    assert options["grpc.max_send_message_length"] == 2**31 - 1
    assert options["grpc.max_receive_message_length"] == 2**31 - 1
