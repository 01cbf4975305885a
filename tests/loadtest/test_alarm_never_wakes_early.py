"""The scheduler's alarm wakes its greenlet at or after the due instant, never before, and lets the
other greenlets run while it waits (it is an event-loop wait, not a sleep of the whole process)."""

from __future__ import annotations

import sys
import time

import gevent
import pytest

from loadtest._engine import ThreadAlarm, TimerfdAlarm, make_alarm

ALARMS = [TimerfdAlarm, ThreadAlarm] if sys.platform == "linux" else [ThreadAlarm]


@pytest.mark.parametrize("alarm_class", ALARMS)
def test_the_alarm_wakes_at_or_after_the_due_instant(alarm_class) -> None:
    alarm = alarm_class()
    woke_early = []
    try:
        for delay_ns in (0, -1_000_000, 50_000, 300_000, 1_500_000) * 20:
            due = time.monotonic_ns() + delay_ns
            alarm.wait_until(due)
            if time.monotonic_ns() < due:
                woke_early.append(delay_ns)
    finally:
        alarm.close()
    assert woke_early == []


@pytest.mark.parametrize("alarm_class", ALARMS)
def test_other_greenlets_run_while_the_alarm_waits(alarm_class) -> None:
    alarm = alarm_class()
    ticks: list[int] = []

    def tick() -> None:
        for _ in range(3):
            ticks.append(time.monotonic_ns())
            gevent.sleep(0)

    try:
        due = time.monotonic_ns() + 200_000_000
        ticker = gevent.spawn(tick)
        alarm.wait_until(due)
        ticker.join()
    finally:
        alarm.close()
    assert len(ticks) == 3 and all(t < due for t in ticks)


@pytest.mark.skipif(sys.platform != "linux", reason="timerfd is Linux's")
def test_the_engine_uses_a_timerfd_on_linux() -> None:
    alarm = make_alarm()
    alarm.close()
    assert isinstance(alarm, TimerfdAlarm)
