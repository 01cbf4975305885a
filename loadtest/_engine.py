"""The open/closed-loop engine of one load process (runs under gevent).

Open loop: one scheduler greenlet launches each request at its scheduled time whether or not
earlier ones returned, so a server stall shows up in the latency of every request due during it
(no coordinated omission). In-flight requests are bounded; an arrival over the bound is recorded
as `dropped`, never silently skipped. Closed loop: `concurrency` greenlets send back to back
(scheduled = sent), which is what stock Locust does and what hides stalls.

A run's end is decided here, once, for both loops: `end_ns`, or earlier when a `StopWhen` says so
(early stopping, `_early_stop.py`): from its `after_ns` on, about every `every_s`, its predicate is
asked; True ends the schedule at that instant. Open loop stays open loop: arrivals due after the
decision are never launched, and requests in flight finish (or are drained) as at any end.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import gevent
import numpy as np

from ._arrivals import Arrivals
from ._schema import RequestRecord
from ._transports import Outcome, Transport

Sink = Callable[[RequestRecord], None]
# gevent's timers (libev on epoll) wake on whole milliseconds, up to 1 ms late. To launch on time
# the scheduler sleeps on a gevent timer until ALARM_LEAD_NS before the due time, then waits for
# the last stretch on a Linux timerfd armed at the due instant (hrtimer, microsecond-precise),
# watched by the event loop like any socket: one syscall to arm it, one read when it fires, no
# thread hand-off. Elsewhere a real OS thread (clock_nanosleep) wakes the loop through an async
# watcher instead. No busy loop: the generator's CPU use stays honest.
ALARM_LEAD_NS = 2_000_000
SPIN_BELOW_NS = 50_000
INTERRUPTED = "interrupted: the run was stopped before the response arrived"


class StopPredicate(Protocol):
    def __call__(self, now_ns: int) -> bool: ...


@dataclass(frozen=True)
class StopWhen:
    """End the schedule before its `end_ns`: from `after_ns` on, every `every_s`, `ready(now_ns)` is
    asked; the first True ends the schedule when it answers (`Engine.end_ns`, `Engine.ended_early`):
    arrivals due while it judged were launched and belong to the window, later ones never are."""

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


def _choices(pool_size: int, seed: np.random.SeedSequence | int) -> Iterator[int]:
    """Which pooled body each request sends: seeded separately from the schedule."""
    rng = np.random.default_rng(seed)
    while True:
        yield from rng.integers(0, pool_size, 4096).tolist()


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_CLOCK_MONOTONIC = 1  # the clock of time.monotonic_ns() on Linux
_TFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class TimerfdAlarm:
    """Wakes the calling greenlet at a monotonic_ns instant: a timerfd the event loop watches."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._fd = fd
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._hub = gevent.get_hub()
        self._watcher = self._hub.loop.io(fd, 1)  # 1: readable

    def wait_until(self, due_ns: int) -> None:
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(due_ns, 1_000_000_000)
        if self._settime(self._fd, _TFD_TIMER_ABSTIME, self._spec_ref, None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self._hub.wait(self._watcher)
        try:
            os.read(self._fd, 8)  # the expiry count: consumed, so the fd is quiet until armed again
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._watcher.close()
        os.close(self._fd)


def make_alarm() -> TimerfdAlarm | ThreadAlarm:
    """A timerfd where the OS has one (Linux), else the thread alarm."""
    try:
        return TimerfdAlarm()
    except (OSError, AttributeError):
        return ThreadAlarm()


class ThreadAlarm:
    """Wakes the calling greenlet at a monotonic_ns instant, timed by one real OS thread."""

    def __init__(self) -> None:
        from gevent import monkey

        self._sleep = monkey.get_original("time", "sleep")
        self._hub = gevent.get_hub()
        self._watcher = self._hub.loop.async_()
        self._job = monkey.get_original("_thread", "allocate_lock")()
        self._job.acquire()
        self._due_ns = 0
        self._closed = False
        monkey.get_original("_thread", "start_new_thread")(self._run, ())

    def _run(self) -> None:
        while True:
            self._job.acquire()  # a real, blocking acquire: the greenlet side releases it per alarm
            if self._closed:
                return
            delay = self._due_ns - time.monotonic_ns()
            if delay > 0:
                self._sleep(delay / 1e9)
            self._watcher.send()

    def wait_until(self, due_ns: int) -> None:
        from gevent.hub import Waiter

        waiter = Waiter(self._hub)
        self._watcher.start(waiter.switch, None)  # started before the thread may fire: no lost wake-up
        try:
            self._due_ns = due_ns
            self._job.release()
            waiter.get()
        finally:
            self._watcher.stop()

    def close(self) -> None:
        """Let the thread exit (long-lived processes, e.g. Locust's web UI, start many engines)."""
        self._closed = True
        try:
            self._job.release()
        except RuntimeError:
            pass  # already released: the thread will see _closed on its next acquire


class Engine:
    """Sends pooled bodies through one transport on a schedule and hands records to a sink."""

    def __init__(
        self,
        *,
        transport: Transport,
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
        self._transport = transport
        self._bodies = bodies
        self._sink = sink
        self._server = server
        self._protocol = protocol
        self._batch = batch
        self._stream = stream
        self._choice = _choices(len(bodies), payload_seed)
        self._choose = choose
        self._max_in_flight = max_in_flight
        self._in_flight: dict[int, tuple[int, int, int, gevent.Greenlet | None]] = {}
        self._stopping = False
        self._end_ns = 0
        self.ended_early = False  # a StopWhen ended the schedule before its end_ns
        self._seq = 0
        self._alarm_clock: TimerfdAlarm | ThreadAlarm | None = None
        self.counters = Counters()

    @property
    def _alarm(self) -> TimerfdAlarm | ThreadAlarm:
        if self._alarm_clock is None:
            self._alarm_clock = make_alarm()
        return self._alarm_clock

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop launching requests (SIGTERM/SIGINT); in-flight ones get a grace period in drain()."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def in_flight_scheduled(self) -> list[int]:
        """When each request now in flight was scheduled (early stopping's judge reads their ages)."""
        return [scheduled for scheduled, _, _, _ in self._in_flight.values()]

    @property
    def end_ns(self) -> int:
        """When the schedule ended (or will end): the run's end_ns, or the instant a StopWhen chose."""
        return self._end_ns

    def _watch(self, stop_when: StopWhen | None) -> gevent.Greenlet | None:
        """Ask `stop_when` from its `after_ns` on, about every `every_s`, until it says stop."""
        if stop_when is None:
            return None

        def watch() -> None:
            due = stop_when.after_ns
            while not self._stopping:
                delay = due - time.monotonic_ns()
                if delay > 0:
                    gevent.sleep(delay / 1e9)
                now = time.monotonic_ns()
                if now >= self._end_ns or self._stopping:
                    return
                if stop_when.ready(now):  # may yield (a judge in a thread): the schedule went on meanwhile
                    self._end_ns = min(self._end_ns, time.monotonic_ns())
                    self.ended_early = True
                    return
                due += round(stop_when.every_s * 1e9)

        return gevent.spawn(watch)

    def close(self) -> None:
        """Release the alarm thread; call once the engine is done."""
        if self._alarm_clock is not None:
            self._alarm_clock.close()
            self._alarm_clock = None

    # -- open loop -------------------------------------------------------------------------
    def run_open(
        self, arrivals: Arrivals, start_ns: int, end_ns: int, *, stop_when: StopWhen | None = None
    ) -> None:
        """Launch one request per scheduled arrival in [start_ns, end_ns), or until `stop_when` ends
        the schedule earlier; returns when all are launched."""
        self._end_ns = end_ns
        watcher = self._watch(stop_when)
        try:
            self._launch(arrivals, start_ns)
        finally:
            if watcher is not None:
                watcher.kill()

    def _launch(self, arrivals: Arrivals, start_ns: int) -> None:
        for offset in arrivals.offsets_ns():
            scheduled = start_ns + offset
            if scheduled >= self._end_ns or self._stopping:
                break
            self._wait_until(scheduled)
            if self._stopping or scheduled >= self._end_ns:  # the end may have come while waiting
                break
            seq = self._next_seq()
            self.counters.scheduled += 1
            if len(self._in_flight) >= self._max_in_flight:
                self.counters.dropped += 1
                self._record(
                    seq,
                    scheduled,
                    scheduled,
                    scheduled,
                    0,
                    Outcome("dropped", 0, 0, "in-flight bound reached"),
                )
                continue
            self._in_flight[seq] = (scheduled, scheduled, 0, None)
            self.counters.in_flight = len(self._in_flight)
            greenlet = gevent.spawn(self._request, seq, scheduled)
            self._in_flight[seq] = (scheduled, scheduled, 0, greenlet)

    def _wait_until(self, due_ns: int) -> None:
        while not self._stopping:
            delay = due_ns - time.monotonic_ns()
            if delay <= 0:
                return
            if delay > ALARM_LEAD_NS:
                gevent.sleep((delay - ALARM_LEAD_NS) / 1e9)  # coarse, and stop() is seen here
            elif delay > SPIN_BELOW_NS:
                self._alarm.wait_until(due_ns)
            else:
                gevent.sleep(0)

    def _request(self, seq: int, scheduled: int) -> None:
        body = self._next_body()
        sent = time.monotonic_ns()
        self._in_flight[seq] = (scheduled, sent, len(body), self._in_flight[seq][3])
        self.counters.sent += 1
        outcome = self._transport.send(body)
        done = time.monotonic_ns()
        sent = outcome.sent_ns or sent  # a transport's own hand-off delay is lateness, not service time
        del self._in_flight[seq]
        self.counters.in_flight = len(self._in_flight)
        self._record(seq, scheduled, sent, done, len(body), outcome)

    # -- closed loop -----------------------------------------------------------------------
    def run_closed(
        self, concurrency: int, start_ns: int, end_ns: int, *, stop_when: StopWhen | None = None
    ) -> None:
        """`concurrency` senders, each back to back until end_ns (or until `stop_when` ends the run
        earlier); returns when all have finished."""
        self._end_ns = end_ns
        watcher = self._watch(stop_when)
        try:
            delay = start_ns - time.monotonic_ns()
            if delay > 0:
                gevent.sleep(delay / 1e9)
            senders = [gevent.spawn(self._closed_sender) for _ in range(concurrency)]
            gevent.joinall(senders)
        finally:
            if watcher is not None:
                watcher.kill()

    def _closed_sender(self) -> None:
        while not self._stopping:
            now = time.monotonic_ns()
            if now >= self._end_ns:
                return
            seq = self._next_seq()
            self.counters.scheduled += 1
            self._in_flight[seq] = (now, now, 0, gevent.getcurrent())
            self.counters.in_flight = len(self._in_flight)
            body = self._next_body()
            sent = time.monotonic_ns()
            self._in_flight[seq] = (now, sent, len(body), gevent.getcurrent())
            self.counters.sent += 1
            outcome = self._transport.send(body)
            done = time.monotonic_ns()
            sent = outcome.sent_ns or sent
            del self._in_flight[seq]
            self.counters.in_flight = len(self._in_flight)
            # closed loop: the request is "scheduled" when it is sent (that is the point)
            self._record(seq, sent, sent, done, len(body), outcome)

    # -- shutdown --------------------------------------------------------------------------
    def drain(self, grace_s: float) -> int:
        """Wait up to grace_s for in-flight requests; record the rest as interrupted. Returns that count."""
        deadline = time.monotonic() + grace_s
        while self._in_flight and time.monotonic() < deadline:
            gevent.sleep(0.01)
        leftovers = list(self._in_flight.items())
        greenlets = [g for _, (_, _, _, g) in leftovers if g is not None and g is not gevent.getcurrent()]
        gevent.killall(greenlets, block=True, timeout=1.0)
        now = time.monotonic_ns()
        interrupted = 0
        for seq, (scheduled, sent, bytes_out, _) in leftovers:
            if self._in_flight.pop(seq, None) is None:
                continue  # it finished while we were stopping the others
            interrupted += 1
            self._record(seq, scheduled, sent, now, bytes_out, Outcome("error", 0, 0, INTERRUPTED))
        self.counters.in_flight = 0
        return interrupted

    # -- records ---------------------------------------------------------------------------
    def _next_body(self) -> bytes:
        return self._choose() if self._choose is not None else self._bodies[next(self._choice)]

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _record(
        self, seq: int, scheduled: int, sent: int, done: int, bytes_out: int, outcome: Outcome
    ) -> None:
        if outcome.status == "ok":
            self.counters.ok += 1
        elif outcome.status in ("error", "timeout"):
            self.counters.errors += 1
        if outcome.status != "dropped":
            self.counters.done += 1
        self._sink(
            RequestRecord(
                seq=seq,
                stream=self._stream,
                server=self._server,
                protocol=self._protocol,
                batch=self._batch,
                scheduled_ns=scheduled,
                sent_ns=sent,
                done_ns=done,
                bytes_out=bytes_out,
                bytes_in=outcome.bytes_in,
                status=outcome.status,  # type: ignore[arg-type]
                code=outcome.code,
                error=outcome.error,
                cache=outcome.cache,
            )
        )
