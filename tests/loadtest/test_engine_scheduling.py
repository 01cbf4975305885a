"""The engine launches on schedule, bounds in-flight requests, and never loses a request.

Unit tests of the engine itself, so the transport here is a stand-in (`FakeTransport`) whose
answer time the test controls; the real transports are tested against real servers elsewhere.
"""

from __future__ import annotations

import time

import gevent
import numpy as np

from loadtest import PoissonArrivals, RequestRecord, schedule_ns
from loadtest._engine import INTERRUPTED, Engine
from loadtest._transports import Outcome


class FakeTransport:
    def __init__(self, answer_after_s: float = 0.0) -> None:
        self.answer_after_s = answer_after_s
        self.sent: list[bytes] = []

    def send(self, body: bytes) -> Outcome:
        self.sent.append(body)
        gevent.sleep(self.answer_after_s)
        return Outcome("ok", 200, 2, None)

    def prime(self) -> None: ...

    def close(self) -> None: ...


def engine_with(transport: FakeTransport, records: list[RequestRecord], max_in_flight: int = 100) -> Engine:
    return Engine(
        transport=transport,
        bodies=[b"a", b"bb", b"ccc"],
        sink=records.append,
        server="torchserve",
        protocol="grpc",
        batch=1,
        stream=0,
        payload_seed=4,
        max_in_flight=max_in_flight,
    )


def outstanding_max(records: list[RequestRecord]) -> int:
    events = sorted([(r.sent_ns, 1) for r in records] + [(r.done_ns, -1) for r in records])
    return int(np.cumsum([delta for _, delta in events]).max())


def test_every_scheduled_arrival_is_sent_at_or_after_its_time_in_order() -> None:
    records: list[RequestRecord] = []
    engine = engine_with(FakeTransport(), records)
    arrivals = PoissonArrivals(400, seed=9)
    start = time.monotonic_ns()
    engine.run_open(arrivals, start, start + 1_000_000_000)
    assert engine.drain(5.0) == 0
    engine.close()
    expected = (start + schedule_ns(arrivals, 1.0)).tolist()
    assert sorted(r.scheduled_ns for r in records) == expected  # exactly the schedule, nothing skipped
    assert all(r.sent_ns >= r.scheduled_ns for r in records)  # never early
    assert sorted(r.seq for r in records) == list(range(len(expected)))
    assert {r.status for r in records} == {"ok"}
    assert {r.bytes_out for r in records} == {1, 2, 3}  # payloads drawn from the whole pool


def test_arrivals_over_the_in_flight_bound_are_recorded_as_dropped() -> None:
    records: list[RequestRecord] = []
    engine = engine_with(FakeTransport(answer_after_s=0.3), records, max_in_flight=3)
    start = time.monotonic_ns()
    engine.run_open(PoissonArrivals(100, seed=1), start, start + 500_000_000)
    engine.drain(5.0)
    engine.close()
    dropped = [r for r in records if r.status == "dropped"]
    sent = [r for r in records if r.status == "ok"]
    assert dropped and sent
    assert all(r.sent_ns == r.done_ns == r.scheduled_ns and r.bytes_out == 0 for r in dropped)
    assert outstanding_max(sent) <= 3
    assert engine.counters.dropped == len(dropped)


def test_stopping_records_in_flight_requests_as_interrupted() -> None:
    records: list[RequestRecord] = []
    engine = engine_with(FakeTransport(answer_after_s=30), records)
    start = time.monotonic_ns()
    stopper = gevent.spawn_later(0.3, engine.stop)
    engine.run_open(PoissonArrivals(50, seed=2), start, start + 10_000_000_000)
    interrupted = engine.drain(0.1)
    engine.close()
    stopper.join()
    assert interrupted == len(records) > 0
    assert {(r.status, r.error) for r in records} == {("error", INTERRUPTED)}


def test_closed_loop_never_exceeds_its_concurrency() -> None:
    records: list[RequestRecord] = []
    engine = engine_with(FakeTransport(answer_after_s=0.01), records)
    start = time.monotonic_ns()
    engine.run_closed(2, start, start + 300_000_000)
    engine.close()
    assert len(records) > 4
    assert outstanding_max(records) <= 2
    assert all(r.scheduled_ns == r.sent_ns for r in records)
