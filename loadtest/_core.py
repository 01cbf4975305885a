"""The engine's scheduling and recording logic, one copy for every I/O runtime.

Two runtimes drive it: gevent (`_engine.Engine`, Locust users) and one asyncio event loop
(`_aio_engine.AioEngine`, `inferload load` workers). Each runtime only waits (until an arrival is
due, for a response) and starts requests; what a request is (its sequence number, body, times and
record), when an arrival is dropped, when the schedule ends (the run's end, a stop, a `StopWhen`),
which requests were interrupted, and the counters all live here, so both engines record the same.

Open loop: each scheduled arrival is launched at its time whether or not earlier ones returned, so
a server stall shows up in the latency of every request due during it (no coordinated omission).
In-flight requests are bounded; an arrival over the bound is recorded as `dropped`, never silently
skipped. Closed loop: `concurrency` senders back to back (scheduled = sent), which is what stock
Locust does and what hides stalls.

A run's end is decided here, once, for both loops: `end_ns`, or earlier when a `StopWhen` says so
(early stopping, `_early_stop.py`): from its `after_ns` on, about every `every_s`, its predicate is
asked; True ends the schedule at that instant. Open loop stays open loop: arrivals due after the
decision are never launched, and requests in flight finish (or are drained) as at any end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ._schema import RequestRecord
from ._transports import Outcome

Sink = Callable[[RequestRecord], None]
INTERRUPTED = "interrupted: the run was stopped before the response arrived"
DROPPED = Outcome("dropped", 0, 0, "in-flight bound reached")


class StopPredicate(Protocol):
    def __call__(self, now_ns: int) -> bool: ...


@dataclass(frozen=True)
class StopWhen:
    """End the schedule before its `end_ns`: from `after_ns` on, every `every_s`, `ready(now_ns)` is
    asked; the first True ends the schedule when it answers (`end_ns`, `ended_early`): arrivals due
    while it judged were launched and belong to the window, later ones never are."""

    after_ns: int
    ready: StopPredicate
    every_s: float = 1.0


@dataclass
class Counters:
    """Live numbers for progress displays."""

    scheduled: int = 0
    sent: int = 0
    done: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    in_flight: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Ticket:
    """One launched request, from its arrival to its record. `handle`: the runtime's (a greenlet)."""

    __slots__ = ("seq", "scheduled_ns", "sent_ns", "bytes_out", "handle")

    def __init__(self, seq: int, scheduled_ns: int) -> None:
        self.seq = seq
        self.scheduled_ns = scheduled_ns
        self.sent_ns = scheduled_ns
        self.bytes_out = 0
        self.handle: Any = None


def _choices(pool_size: int, seed: np.random.SeedSequence | int) -> Iterator[int]:
    """Which pooled body each request sends: seeded separately from the schedule."""
    rng = np.random.default_rng(seed)
    while True:
        yield from rng.integers(0, pool_size, 4096).tolist()


class Ledger:
    """The requests of one engine: numbering, bodies, the in-flight bound, the end, the records."""

    def __init__(
        self,
        *,
        bodies: list[bytes],
        sink: Sink,
        server: str,
        protocol: str,
        batch: int,
        stream: int,
        payload_seed: np.random.SeedSequence | int,
        max_in_flight: int,
        choose: Callable[[], bytes] | None = None,
    ) -> None:
        """`choose` picks each request's body (e.g. `RepeatingChoice`); None: uniform over `bodies`."""
        if not bodies:
            raise ValueError("the payload pool is empty: build at least one request body")
        self._bodies = bodies
        self._sink = sink
        self._server = server
        self._protocol = protocol
        self._batch = batch
        self._stream = stream
        self._choice = _choices(len(bodies), payload_seed)
        self._choose = choose
        self.max_in_flight = max_in_flight
        self.in_flight: dict[int, Ticket] = {}
        self.stopping = False
        self.end_ns = 0
        self.ended_early = False  # a StopWhen ended the schedule before its end_ns
        self._seq = 0
        self.counters = Counters()

    # -- the end ----------------------------------------------------------------------------------
    def accepts(self, scheduled_ns: int) -> bool:
        """Is an arrival at `scheduled_ns` still part of the schedule?"""
        return not self.stopping and scheduled_ns < self.end_ns

    def ask(self, stop_when: StopWhen, now_ns: int) -> bool:
        """Ask `stop_when` once at `now_ns` (True: the schedule ends now; False: ask again later).
        Also True when the schedule has already ended, so a watcher knows to give up."""
        if now_ns >= self.end_ns or self.stopping:
            return True
        if stop_when.ready(now_ns):  # may yield (a judge elsewhere): the schedule went on meanwhile
            decided_ns = time.monotonic_ns()
            if decided_ns < self.end_ns:  # a stop decided once the end had passed is the end's, not early
                self.end_ns = decided_ns
                self.ended_early = True
            return True
        return False

    # -- requests ---------------------------------------------------------------------------------
    def arrive(self, scheduled_ns: int) -> Ticket | None:
        """An open-loop arrival: its ticket, or None when the in-flight bound dropped it (recorded)."""
        seq = self._seq
        self._seq = seq + 1
        counters = self.counters
        counters.scheduled += 1
        if len(self.in_flight) >= self.max_in_flight:
            counters.dropped += 1
            self._record(seq, scheduled_ns, scheduled_ns, scheduled_ns, 0, DROPPED)
            return None
        ticket = Ticket(seq, scheduled_ns)
        self.in_flight[seq] = ticket
        counters.in_flight = len(self.in_flight)
        return ticket

    def arrive_closed(self) -> Ticket:
        """A closed-loop request, due now."""
        seq = self._seq
        self._seq = seq + 1
        self.counters.scheduled += 1
        ticket = Ticket(seq, time.monotonic_ns())
        self.in_flight[seq] = ticket
        self.counters.in_flight = len(self.in_flight)
        return ticket

    def body(self, ticket: Ticket) -> bytes:
        """The ticket's body, chosen now; the request counts as sent from here."""
        body = self._choose() if self._choose is not None else self._bodies[next(self._choice)]
        ticket.bytes_out = len(body)
        ticket.sent_ns = time.monotonic_ns()
        self.counters.sent += 1
        return body

    def finish(self, ticket: Ticket, outcome: Outcome, done_ns: int, *, closed: bool = False) -> None:
        """Record a ticket's outcome (once: a ticket drained as interrupted is not recorded again)."""
        if self.in_flight.pop(ticket.seq, None) is None:
            return
        self.counters.in_flight = len(self.in_flight)
        sent = outcome.sent_ns or ticket.sent_ns  # a transport's own hand-off delay is lateness
        # closed loop: the request is "scheduled" when it is sent (that is the point)
        self._record(ticket.seq, sent if closed else ticket.scheduled_ns, sent, done_ns, ticket.bytes_out,
                     outcome)

    def interrupt(self, now_ns: int) -> list[Ticket]:
        """Record every request still in flight as interrupted; returns their tickets."""
        leftovers = list(self.in_flight.values())
        self.in_flight.clear()
        self.counters.in_flight = 0
        for ticket in leftovers:
            self._record(ticket.seq, ticket.scheduled_ns, ticket.sent_ns, now_ns, ticket.bytes_out,
                         Outcome("error", 0, 0, INTERRUPTED))
        return leftovers

    def in_flight_scheduled(self) -> list[int]:
        """When each request now in flight was scheduled (early stopping's judge reads their ages)."""
        return [ticket.scheduled_ns for ticket in self.in_flight.values()]

    # -- records ----------------------------------------------------------------------------------
    def _record(
        self, seq: int, scheduled: int, sent: int, done: int, bytes_out: int, outcome: Outcome
    ) -> None:
        status = outcome.status
        counters = self.counters
        if status == "ok":
            counters.ok += 1
        elif status != "dropped":
            counters.errors += 1
        if status != "dropped":
            counters.done += 1
        self._sink(
            RequestRecord(
                seq,
                self._stream,
                self._server,
                self._protocol,
                self._batch,
                scheduled,
                sent,
                done,
                bytes_out,
                outcome.bytes_in,
                status,  # type: ignore[arg-type]
                outcome.code,
                outcome.error,
                outcome.cache,
            )
        )


class LedgerEngine:
    """What both engines share: their ledger, its counters, the controls and the schedule's end."""

    def __init__(
        self,
        *,
        bodies: list[bytes],
        sink: Sink,
        server: str,
        protocol: str,
        batch: int,
        stream: int,
        payload_seed: np.random.SeedSequence | int,
        max_in_flight: int,
        choose: Callable[[], bytes] | None = None,
    ) -> None:
        """`choose` picks each request's body (e.g. `RepeatingChoice`); None: uniform over `bodies`."""
        self._ledger = Ledger(
            bodies=bodies, sink=sink, server=server, protocol=protocol, batch=batch, stream=stream,
            payload_seed=payload_seed, max_in_flight=max_in_flight, choose=choose,
        )
        self.counters: Counters = self._ledger.counters

    def stop(self) -> None:
        """Stop launching requests (SIGTERM/SIGINT); in-flight ones get a grace period in drain()."""
        self._ledger.stopping = True

    @property
    def stopping(self) -> bool:
        return self._ledger.stopping

    def in_flight_scheduled(self) -> list[int]:
        """When each request now in flight was scheduled (early stopping's judge reads their ages)."""
        return self._ledger.in_flight_scheduled()

    @property
    def end_ns(self) -> int:
        """When the schedule ended (or will end): the run's end_ns, or the instant a StopWhen chose."""
        return self._ledger.end_ns

    @property
    def ended_early(self) -> bool:
        """A StopWhen ended the schedule before its end_ns."""
        return self._ledger.ended_early
