"""The two engines side by side, for the tests that say what both must do.

One scheduling and recording logic (`loadtest._core.Ledger`) is driven by two runtimes: gevent
(`_engine.Engine`, Locust users) and one asyncio loop (`_aio_engine.AioEngine`, `inferload load`
workers). These stand-in transports answer after a time the test chooses, in either runtime, so a
test parametrized over RUNTIMES specifies both engines with the same assertions. The real
transports are tested against real servers elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import gevent

from loadtest import RequestRecord
from loadtest._aio_engine import AioEngine, new_loop
from loadtest._core import Ticket
from loadtest._engine import Engine
from loadtest._transports import Outcome

RUNTIMES = ("gevent", "asyncio")
OK = Outcome("ok", 200, 2, None)


class GeventAnswers:
    def __init__(self, latency_s: Callable[[], float], outcome: Callable[[], Outcome]) -> None:
        self.latency_s, self.outcome = latency_s, outcome
        self.sent: list[bytes] = []

    def send(self, body: bytes) -> Outcome:
        self.sent.append(body)
        gevent.sleep(self.latency_s())
        return self.outcome()

    def prime(self) -> None: ...

    def close(self) -> None: ...


class AsyncioAnswers:
    def __init__(
        self, latency_s: Callable[[], float], outcome: Callable[[], Outcome], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.latency_s, self.outcome, self.loop = latency_s, outcome, loop
        self.sent: list[bytes] = []
        self._pending: dict[int, asyncio.TimerHandle] = {}

    def start(self, body: bytes, ticket: Ticket, done: Callable[[Ticket, Outcome], None]) -> None:
        self.sent.append(body)

        def answer() -> None:
            del self._pending[ticket.seq]
            done(ticket, self.outcome())

        self._pending[ticket.seq] = self.loop.call_later(self.latency_s(), answer)

    async def prime(self) -> None: ...

    def abort(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    async def close(self) -> None:
        self.abort()


def build(
    runtime: str,
    sink: Callable[[RequestRecord], None],
    *,
    latency_s: Callable[[], float] = lambda: 0.0,
    outcome: Callable[[], Outcome] = lambda: OK,
    bodies: list[bytes] | None = None,
    max_in_flight: int = 100,
) -> Any:
    """An engine of `runtime` whose transport answers `outcome()` after `latency_s()` seconds; its
    transport is `engine.test_transport` (what it sent: `.sent`)."""
    common: dict[str, Any] = {
        "bodies": bodies or [b"a"], "sink": sink, "server": "torchserve", "protocol": "grpc", "batch": 1,
        "stream": 0, "payload_seed": 4, "max_in_flight": max_in_flight,
    }
    if runtime == "gevent":
        transport: Any = GeventAnswers(latency_s, outcome)
        engine: Any = Engine(transport=transport, **common)
    else:
        loop = new_loop()
        transport = AsyncioAnswers(latency_s, outcome, loop)
        engine = AioEngine(transport=transport, loop=loop, **common)
    engine.test_transport = transport
    return engine


def call_later(engine: Any, delay_s: float, function: Callable[[], None]) -> None:
    """Call `function` `delay_s` from now in the engine's runtime (e.g. a stop, as SIGTERM does)."""
    if isinstance(engine, AioEngine):
        engine.loop.call_later(delay_s, function)
    else:
        gevent.get_hub().loop.update_now()  # libev's cached "now" is stale after other work in this process
        gevent.spawn_later(delay_s, function)
