"""Every generator gRPC channel is built with loadtest._spec.GRPC_CHANNEL_OPTIONS, in both engines.

The list is the one place the generator's channel options live (benchmarks/generator_cpu.py
extends it to measure an option before it becomes a default), so both transports must use it
as it is at the time the channel is made: through the TransportSpec both engines consume.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest

from loadtest import LoadSettings, _spec
from loadtest._aio_engine import new_loop
from loadtest._aio_transports import AioGrpcTransport
from loadtest._spec import transport_spec
from loadtest._transports import GrpcTransport

EXTRA = ("grpc.http2.bdp_probe", 0)


class FakeChannel:
    def unary_unary(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.parametrize("engine", ["gevent", "asyncio"])
def test_the_channel_gets_the_module_options(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setattr(_spec, "GRPC_CHANNEL_OPTIONS", [*_spec.GRPC_CHANNEL_OPTIONS, EXTRA])
    made: list[tuple[str, list[tuple[str, Any]]]] = []

    def fake_insecure_channel(target: str, options: list[tuple[str, Any]]) -> FakeChannel:
        made.append((target, list(options)))
        return FakeChannel()

    settings = LoadSettings(server="tfserving", protocol="grpc", port=9, rate=1, duration_s=1)
    spec = transport_spec(settings)
    if engine == "gevent":
        monkeypatch.setattr(grpc, "insecure_channel", fake_insecure_channel)
        GrpcTransport(spec.host, spec.port, spec.grpc_method, timeout_s=1.0)
    else:
        monkeypatch.setattr(grpc.aio, "insecure_channel", fake_insecure_channel)
        AioGrpcTransport(spec, new_loop())

    assert made == [("127.0.0.1:9", _spec.GRPC_CHANNEL_OPTIONS)]
    assert EXTRA in made[0][1]


def test_the_default_options_let_the_servers_decide_what_is_too_big() -> None:
    options = dict(_spec.GRPC_CHANNEL_OPTIONS)
    assert options["grpc.max_send_message_length"] == 2**31 - 1
    assert options["grpc.max_receive_message_length"] == 2**31 - 1
