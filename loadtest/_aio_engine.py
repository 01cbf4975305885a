"""The engine of `inferload load` workers: `_core.Ledger` driven by one asyncio event loop (uvloop).

Why one loop: the scheduler, the HTTP client and gRPC calls (grpc.aio) all run on the loop of the
worker's only Python thread, so a request is started by the same callback that found it due, and
its answer is read by the loop that is already awake; no greenlet per request, no hand-off between
threads (the gevent engine's gRPC path crossed four per call).

The pacer is no coroutine: it is the callback of a timerfd (`_timerfd.Timerfd`) armed at the next
arrival's instant and watched by the loop like a socket, so it wakes within microseconds of the due
time instead of rounding to the loop's millisecond timers. An arrival due less than SPIN_NS after
the one just launched is waited for by spinning on the clock instead of another trip through the
loop. Requests are not tasks: a transport's `start(body, ticket, done)` starts the request and
calls `done(ticket, outcome)` from the loop when it has finished; a closed-loop sender is the chain
of those callbacks.

Same interface as `_engine.Engine` (what the worker and the early-stopping tests use): `run_open` /
`run_closed` / `drain` block until done (they run the loop), `stop()` may come from a signal
handler on the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ._arrivals import Arrivals
from ._core import LedgerEngine, StopWhen, Ticket
from ._timerfd import Timerfd
from ._transports import Outcome

SPIN_NS = 30_000  # the next arrival is due this soon: spin on the clock instead of re-arming the timerfd
DRAIN_POLL_S = 0.005
Done = Callable[[Ticket, Outcome], None]


class AioTransport(Protocol):
    """A sender on the engine's loop. `start` never blocks and never calls `done` before it returns;
    `done(ticket, outcome)` is called exactly once per started request unless `abort` came first."""

    def start(self, body: bytes, ticket: Ticket, done: Done) -> None: ...

    async def prime(self) -> None:
        """Connect (and resolve the address) before the schedule starts, sending no request."""

    def abort(self) -> None:
        """Drop every request in flight without calling their `done` (drain recorded them)."""

    async def close(self) -> None: ...


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (it is pinned), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class AioEngine(LedgerEngine):
    """Sends pooled bodies through one asyncio transport on a schedule and hands records to a sink."""

    def __init__(self, *, transport: AioTransport, loop: asyncio.AbstractEventLoop, **ledger: Any) -> None:
        """`loop`: the loop the transport was made on; `ledger`: bodies, sink, server, protocol, batch,
        stream, payload_seed, max_in_flight, choose (`_core.LedgerEngine`)."""
        super().__init__(**ledger)
        self._transport = transport
        self._loop = loop
        self._timerfd: Timerfd | None = None
        self._offsets: Iterator[int] = iter(())
        self._start_ns = 0
        self._next_ns = 0
        self._finished: asyncio.Future[None] | None = None
        self._senders = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def stop(self) -> None:
        """Stop launching requests (SIGTERM/SIGINT); in-flight ones get a grace period in drain()."""
        super().stop()
        self._wake_pacer()

    def close(self) -> None:
        if self._timerfd is not None:
            self._loop.remove_reader(self._timerfd.fd)
            self._timerfd.close()
            self._timerfd = None

    async def _watch(self, stop_when: StopWhen) -> None:
        """Ask `stop_when` from its `after_ns` on, about every `every_s`, until it says stop."""
        due = stop_when.after_ns
        while True:
            while (delay := due - time.monotonic_ns()) > 0:  # the loop's timers may fire up to 1 ms early
                await asyncio.sleep(max(delay / 1e9, 0.0002))
            if self._ledger.ask(stop_when, time.monotonic_ns()):
                self._wake_pacer()
                return
            due += round(stop_when.every_s * 1e9)

    def _run(self, main: asyncio.Future[None], stop_when: StopWhen | None) -> None:
        async def run() -> None:
            watcher = self._loop.create_task(self._watch(stop_when)) if stop_when is not None else None
            try:
                await main
            finally:
                if watcher is not None:
                    watcher.cancel()

        self._loop.run_until_complete(run())

    # -- open loop ----------------------------------------------------------------------------
    def run_open(
        self, arrivals: Arrivals, start_ns: int, end_ns: int, *, stop_when: StopWhen | None = None
    ) -> None:
        """Launch one request per scheduled arrival in [start_ns, end_ns), or until `stop_when` ends
        the schedule earlier; returns when all are launched."""
        self._ledger.end_ns = end_ns
        self._offsets = arrivals.offsets_ns()
        self._start_ns = start_ns
        self._finished = self._loop.create_future()
        if self._timerfd is None:
            self._timerfd = Timerfd()
            self._loop.add_reader(self._timerfd.fd, self._on_alarm)
        self._advance()
        self._timerfd.arm(self._next_ns)
        self._run(self._finished, stop_when)

    def _advance(self) -> None:
        try:
            self._next_ns = self._start_ns + next(self._offsets)
        except StopIteration:
            self._next_ns = 2**62  # no more arrivals: past any end

    def _wake_pacer(self) -> None:
        if self._timerfd is not None and self._finished is not None and not self._finished.done():
            self._timerfd.arm(0)

    def _on_alarm(self) -> None:
        timerfd = self._timerfd
        assert timerfd is not None
        timerfd.consume()
        ledger = self._ledger
        start = self._transport.start
        done = self._done
        clock = time.monotonic_ns
        while True:
            scheduled = self._next_ns
            if not ledger.accepts(scheduled):
                finished = self._finished
                if finished is not None and not finished.done():
                    finished.set_result(None)
                return
            now = clock()
            if scheduled - now > SPIN_NS:
                timerfd.arm(scheduled)
                return
            while now < scheduled:
                now = clock()
            ticket = ledger.arrive(scheduled)
            if ticket is not None:
                start(ledger.body(ticket), ticket, done)
            self._advance()

    def _done(self, ticket: Ticket, outcome: Outcome) -> None:
        self._ledger.finish(ticket, outcome, time.monotonic_ns())

    # -- closed loop --------------------------------------------------------------------------
    def run_closed(
        self, concurrency: int, start_ns: int, end_ns: int, *, stop_when: StopWhen | None = None
    ) -> None:
        """`concurrency` senders, each back to back until end_ns (or until `stop_when` ends the run
        earlier); returns when all have finished."""
        self._ledger.end_ns = end_ns
        self._finished = self._loop.create_future()
        self._senders = concurrency

        def begin() -> None:
            early = start_ns - time.monotonic_ns()
            if early > 0:  # the loop's timers may fire up to 1 ms early
                self._loop.call_later(max(early / 1e9, 0.0002), begin)
                return
            for _ in range(concurrency):
                self._send_closed()

        begin()
        self._run(self._finished, stop_when)

    def _send_closed(self) -> None:
        ledger = self._ledger
        if not ledger.accepts(time.monotonic_ns()):
            self._senders -= 1
            if self._senders == 0 and self._finished is not None and not self._finished.done():
                self._finished.set_result(None)
            return
        ticket = ledger.arrive_closed()
        self._transport.start(ledger.body(ticket), ticket, self._done_closed)

    def _done_closed(self, ticket: Ticket, outcome: Outcome) -> None:
        self._ledger.finish(ticket, outcome, time.monotonic_ns(), closed=True)
        self._send_closed()

    # -- shutdown -----------------------------------------------------------------------------
    def drain(self, grace_s: float) -> int:
        """Wait up to grace_s for in-flight requests; record the rest as interrupted. Returns that count."""
        ledger = self._ledger

        async def wait() -> None:
            deadline = time.monotonic() + grace_s
            while ledger.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(DRAIN_POLL_S)

        self._loop.run_until_complete(wait())
        leftovers = ledger.interrupt(time.monotonic_ns())
        if leftovers:
            self._transport.abort()
        return len(leftovers)
