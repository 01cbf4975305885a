"""The engine launches on schedule, bounds in-flight requests, and never loses a request: both
engines (gevent for Locust users, asyncio for load workers), which share one scheduling and
recording logic.

Unit tests of the engines themselves, so the transport is a stand-in (tests/engine_runtimes.py)
whose answer time the test controls; the real transports are tested against real servers elsewhere.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from engine_runtimes import RUNTIMES, build, call_later

from loadtest import PoissonArrivals, RequestRecord, schedule_ns
from loadtest._core import INTERRUPTED

pytestmark = pytest.mark.parametrize("runtime", RUNTIMES)
NO_BOUND = 100_000  # more than any of these schedules holds


def outstanding_max(records: list[RequestRecord]) -> int:
    events = sorted([(r.sent_ns, 1) for r in records] + [(r.done_ns, -1) for r in records])
    return int(np.cumsum([delta for _, delta in events]).max())


def test_every_scheduled_arrival_is_sent_at_or_after_its_time_in_order(runtime: str) -> None:
    records: list[RequestRecord] = []
    # no in-flight bound to reach: on make test's idle workers a starved loop launches seconds of
    # arrivals at once when it runs again (it dropped some at a bound of 100 in one run)
    engine = build(runtime, records.append, bodies=[b"a", b"bb", b"ccc"], max_in_flight=NO_BOUND)
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


def test_arrivals_over_the_in_flight_bound_are_recorded_as_dropped(runtime: str) -> None:
    records: list[RequestRecord] = []
    engine = build(runtime, records.append, latency_s=lambda: 0.3, max_in_flight=3)
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


def test_stopping_records_in_flight_requests_as_interrupted(runtime: str) -> None:
    records: list[RequestRecord] = []
    engine = build(runtime, records.append, latency_s=lambda: 30, max_in_flight=NO_BOUND)
    start = time.monotonic_ns()
    call_later(engine, 0.3, engine.stop)
    engine.run_open(PoissonArrivals(50, seed=2), start, start + 10_000_000_000)
    interrupted = engine.drain(0.1)
    engine.close()
    assert interrupted == len(records) > 0
    assert {(r.status, r.error) for r in records} == {("error", INTERRUPTED)}


def test_closed_loop_never_exceeds_its_concurrency(runtime: str) -> None:
    records: list[RequestRecord] = []
    engine = build(runtime, records.append, latency_s=lambda: 0.01)
    start = time.monotonic_ns()
    engine.run_closed(2, start, start + 300_000_000)
    engine.close()
    assert len(records) > 4
    assert outstanding_max(records) <= 2
    assert all(r.scheduled_ns == r.sent_ns for r in records)
