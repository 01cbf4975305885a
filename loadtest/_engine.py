"""The engine of Locust users (gevent): the shared scheduling and recording logic (`_core.Ledger`)
driven by greenlets. `inferload load` workers run the same logic on one asyncio loop (`_aio_engine`).

The open-loop scheduler is one greenlet that launches each request, in a greenlet of its own, at its
scheduled time; closed loop runs `concurrency` sender greenlets. What is recorded, dropped or
interrupted, and when the schedule ends, is `_core`'s (see its docstring).
"""

from __future__ import annotations

import time
from typing import Any

import gevent

from ._arrivals import Arrivals
from ._core import INTERRUPTED, Counters, LedgerEngine, StopWhen, Ticket
from ._timerfd import Timerfd
from ._transports import Transport

__all__ = ["INTERRUPTED", "Counters", "Engine", "StopWhen", "ThreadAlarm", "TimerfdAlarm", "make_alarm"]
# gevent's timers (libev on epoll) wake on whole milliseconds, up to 1 ms late. To launch on time
# the scheduler sleeps on a gevent timer until ALARM_LEAD_NS before the due time, then waits for
# the last stretch on a Linux timerfd armed at the due instant (hrtimer, microsecond-precise),
# watched by the event loop like any socket: one syscall to arm it, one read when it fires, no
# thread hand-off. Elsewhere a real OS thread (clock_nanosleep) wakes the loop through an async
# watcher instead. No busy loop: the generator's CPU use stays honest.
ALARM_LEAD_NS = 2_000_000
SPIN_BELOW_NS = 50_000


class TimerfdAlarm:
    """Wakes the calling greenlet at a monotonic_ns instant: a timerfd the event loop watches."""

    def __init__(self) -> None:
        self._timerfd = Timerfd()
        self._hub = gevent.get_hub()
        self._watcher = self._hub.loop.io(self._timerfd.fd, 1)  # 1: readable

    def wait_until(self, due_ns: int) -> None:
        self._timerfd.arm(due_ns)
        self._hub.wait(self._watcher)
        self._timerfd.consume()

    def close(self) -> None:
        self._watcher.close()
        self._timerfd.close()


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


class Engine(LedgerEngine):
    """Sends pooled bodies through one transport on a schedule and hands records to a sink (gevent)."""

    def __init__(self, *, transport: Transport, **ledger: Any) -> None:
        """`ledger`: bodies, sink, server, protocol, batch, stream, payload_seed, max_in_flight, choose
        (`_core.LedgerEngine`)."""
        super().__init__(**ledger)
        self._transport = transport
        self._alarm_clock: TimerfdAlarm | ThreadAlarm | None = None

    @property
    def _alarm(self) -> TimerfdAlarm | ThreadAlarm:
        if self._alarm_clock is None:
            self._alarm_clock = make_alarm()
        return self._alarm_clock

    def _watch(self, stop_when: StopWhen | None) -> gevent.Greenlet | None:
        """Ask `stop_when` from its `after_ns` on, about every `every_s`, until it says stop."""
        if stop_when is None:
            return None

        def watch() -> None:
            due = stop_when.after_ns
            while True:
                delay = due - time.monotonic_ns()
                if delay > 0:
                    gevent.sleep(delay / 1e9)
                if self._ledger.ask(stop_when, time.monotonic_ns()):
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
        self._ledger.end_ns = end_ns
        watcher = self._watch(stop_when)
        try:
            self._launch(arrivals, start_ns)
        finally:
            if watcher is not None:
                watcher.kill()

    def _launch(self, arrivals: Arrivals, start_ns: int) -> None:
        ledger = self._ledger
        for offset in arrivals.offsets_ns():
            scheduled = start_ns + offset
            if not ledger.accepts(scheduled):
                break
            self._wait_until(scheduled)
            if not ledger.accepts(scheduled):  # the end may have come while waiting
                break
            ticket = ledger.arrive(scheduled)
            if ticket is not None:
                ticket.handle = gevent.spawn(self._request, ticket)

    def _wait_until(self, due_ns: int) -> None:
        while not self._ledger.stopping:
            delay = due_ns - time.monotonic_ns()
            if delay <= 0:
                return
            if delay > ALARM_LEAD_NS:
                gevent.sleep((delay - ALARM_LEAD_NS) / 1e9)  # coarse, and stop() is seen here
            elif delay > SPIN_BELOW_NS:
                self._alarm.wait_until(due_ns)
            else:
                gevent.sleep(0)

    def _request(self, ticket: Ticket) -> None:
        outcome = self._transport.send(self._ledger.body(ticket))
        self._ledger.finish(ticket, outcome, time.monotonic_ns())

    # -- closed loop -----------------------------------------------------------------------
    def run_closed(
        self, concurrency: int, start_ns: int, end_ns: int, *, stop_when: StopWhen | None = None
    ) -> None:
        """`concurrency` senders, each back to back until end_ns (or until `stop_when` ends the run
        earlier); returns when all have finished."""
        self._ledger.end_ns = end_ns
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
        ledger = self._ledger
        while ledger.accepts(time.monotonic_ns()):
            ticket = ledger.arrive_closed()
            ticket.handle = gevent.getcurrent()
            outcome = self._transport.send(ledger.body(ticket))
            ledger.finish(ticket, outcome, time.monotonic_ns(), closed=True)

    # -- shutdown --------------------------------------------------------------------------
    def drain(self, grace_s: float) -> int:
        """Wait up to grace_s for in-flight requests; record the rest as interrupted. Returns that count."""
        ledger = self._ledger
        deadline = time.monotonic() + grace_s
        while ledger.in_flight and time.monotonic() < deadline:
            gevent.sleep(0.01)
        leftovers = ledger.interrupt(time.monotonic_ns())
        current = gevent.getcurrent()
        greenlets = [t.handle for t in leftovers if t.handle is not None and t.handle is not current]
        gevent.killall(greenlets, block=True, timeout=1.0)
        return len(leftovers)
