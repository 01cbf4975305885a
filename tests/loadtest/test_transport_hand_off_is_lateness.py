"""A transport that hands requests to a thread of its own says when each really started
(`Outcome.sent_ns`); the engine records that as sent, so a hand-off that waits (a process short
of CPU) shows as the generator's lateness, never as the server's service time."""

from __future__ import annotations

import time

import gevent

from loadtest import ConstantArrivals, RequestRecord
from loadtest._engine import Engine
from loadtest._transports import Outcome

HAND_OFF_S = 0.02


class HandOffTransport:
    """Starts each request only HAND_OFF_S after send() is called, and says when."""

    def __init__(self) -> None:
        self.called: list[int] = []
        self.started: list[int] = []

    def send(self, body: bytes) -> Outcome:
        self.called.append(time.monotonic_ns())
        gevent.sleep(HAND_OFF_S)
        started = time.monotonic_ns()
        self.started.append(started)
        gevent.sleep(0.001)
        return Outcome("ok", 0, 2, None, sent_ns=started)

    def prime(self) -> None: ...

    def close(self) -> None: ...


def engine(records: list[RequestRecord], transport: HandOffTransport) -> Engine:
    return Engine(transport=transport, bodies=[b"a"], sink=records.append, server="torchserve",
                  protocol="grpc", batch=1, stream=0, payload_seed=1, max_in_flight=100)


def test_open_loop_records_the_transports_start_as_sent() -> None:
    records: list[RequestRecord] = []
    transport = HandOffTransport()
    run = engine(records, transport)
    start = time.monotonic_ns()
    run.run_open(ConstantArrivals(50), start, start + 200_000_000)
    run.drain(5.0)
    run.close()
    assert records
    assert sorted(r.sent_ns for r in records) == sorted(transport.started)  # the transport's start...
    in_order = sorted(records, key=lambda r: r.seq)
    assert all(r.sent_ns > called for r, called in zip(in_order, transport.called, strict=True))
    assert all(r.scheduled_ns <= r.sent_ns <= r.done_ns for r in records)  # ...so the wait is lateness


def test_closed_loop_keeps_scheduled_equal_to_the_real_start() -> None:
    records: list[RequestRecord] = []
    transport = HandOffTransport()
    run = engine(records, transport)
    start = time.monotonic_ns()
    run.run_closed(1, start, start + 100_000_000)
    run.close()
    assert records
    assert [r.sent_ns for r in records] == transport.started
    assert all(r.scheduled_ns == r.sent_ns for r in records)
