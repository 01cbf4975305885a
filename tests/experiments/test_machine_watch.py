"""What else took CPU during a cell: a busy process that is not ours counts as other work, our own
child (a load process, the probe) and the servers' processes do not."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from busy_work import busy_code

from inferload.machine import MachineWatch


def foreign_busy(seconds: float, pid_file: Path, *, prefix: str = "", stay_normal: bool = False) -> None:
    """A busy process that is nobody's child here: started by a shell that exits at once (daemonized);
    `stay_normal`: it keeps itself in SCHED_OTHER (tests/busy_work.py)."""
    code = busy_code(seconds, stay_normal=stay_normal)
    shell = f'{prefix}{sys.executable} -c "{code}" >/dev/null 2>&1 & echo $! > {pid_file}'
    subprocess.run(["sh", "-c", shell], check=True)


def wait_until_busy(process: psutil.Process, cpu_s: float = 0.2, within_s: float = 5.0) -> float:
    """Until `process` has used `cpu_s` of CPU (on a loaded machine it may wait for a core), at most
    `within_s`; returns the CPU-seconds it has used."""
    deadline = time.monotonic() + within_s
    while (used := sum(process.cpu_times()[:2])) < cpu_s and time.monotonic() < deadline:
        time.sleep(0.05)
    return used


def test_other_processes_count_and_ours_and_the_servers_do_not(tmp_path: Path) -> None:
    own = subprocess.Popen([sys.executable, "-c", busy_code(3.0)])
    server = subprocess.Popen([sys.executable, "-c", busy_code(3.0)], start_new_session=True)
    pid_file = tmp_path / "pid"
    foreign_busy(30.0, pid_file, stay_normal=True)  # killed below; outlives a slow start on a loaded machine
    foreign = int(pid_file.read_text())
    foreign_process = psutil.Process(foreign)
    try:
        wait_until_busy(foreign_process)
        with MachineWatch(lambda: [server.pid], interval_s=0.2) as watch:
            time.sleep(0.8)
    finally:
        own.kill()
        server.kill()
        with contextlib.suppress(psutil.NoSuchProcess):
            foreign_process.kill()
    assert watch.window is not None
    assert watch.others.get(foreign, 0.0) > 0.02, "the foreign busy process took CPU in the window"
    assert own.pid not in watch.others and server.pid not in watch.others
    assert watch.window.other_cpu_cores is not None and watch.window.other_cpu_cores > 0.02
    assert watch.window.window_ns[1] - watch.window.window_ns[0] >= 800_000_000
    assert 0.0 <= (watch.window.steal_share or 0.0) <= 1.0


def autogroup_enabled() -> bool:
    path = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return path.is_file() and path.read_text().strip() == "1"


def counted_as_other(prefix: str, tmp_path: Path, *, stay_normal: bool = False,
                     child_of_prefix: bool = False) -> tuple[bool, float]:
    """Start a foreign busy process behind `prefix`, watch 0.8 s: (counted as other work, CPU it took).
    `child_of_prefix`: the prefix is a program that runs the busy loop as its child."""
    pid_file = tmp_path / "pid"
    foreign_busy(30.0, pid_file, prefix=prefix, stay_normal=stay_normal)
    busy = started = psutil.Process(int(pid_file.read_text()))
    try:
        if child_of_prefix:
            deadline = time.monotonic() + 10
            while not started.children() and time.monotonic() < deadline:
                time.sleep(0.05)
            busy = started.children()[0]
        assert wait_until_busy(busy) >= 0.2, "the busy process never ran"
        before = sum(busy.cpu_times()[:2])
        with MachineWatch(lambda: [], interval_s=0.2) as watch:
            time.sleep(0.8)
        took = sum(busy.cpu_times()[:2]) - before
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            busy.kill()
        with contextlib.suppress(psutil.NoSuchProcess):
            started.wait(10)  # a runner ends with its child (the lane runner removes its cgroup)
    return busy.pid in watch.others, took


# alone: at normal priority, beside `make test`'s other lanes, which run as idle work themselves
@pytest.mark.alone
@pytest.mark.skipif(os.sched_getscheduler(0) == os.SCHED_IDLE, reason="the suite runs under SCHED_IDLE")
def test_work_that_yields_to_ours_is_not_counted(tmp_path: Path) -> None:
    """`chrt -i 0` (SCHED_IDLE) work of our own session runs only on CPU time ours leaves idle: not other
    work."""
    counted, took = counted_as_other("chrt -i 0 ", tmp_path)
    # it ran in the window (sharing the idle CPU time with any other idle work), yet is not counted
    assert took > 0.05, "the idle-class process did not run in the window"
    assert not counted


@pytest.mark.alone
@pytest.mark.skipif(os.sched_getscheduler(0) == os.SCHED_IDLE, reason="the suite runs under SCHED_IDLE")
@pytest.mark.skipif(not autogroup_enabled(), reason="the kernel groups no tasks by session here")
def test_idle_work_in_a_session_of_its_own_counts(tmp_path: Path) -> None:
    """SCHED_IDLE ranks a task only inside its session's autogroup: `setsid chrt -i 0` work gets as large
    a share as ours, so it is other work."""
    counted, took = counted_as_other("setsid chrt -i 0 ", tmp_path)
    assert took > 0.05, "the idle-class process did not run in the window"
    assert counted


@pytest.mark.alone
@pytest.mark.needs("cgroup-v1")
def test_work_in_an_idle_cgroup_is_not_counted(tmp_path: Path) -> None:
    """A process in an idle cpu cgroup (tests/idle_lane.py's, as `make test` runs its shared lanes) yields
    to ours even at normal priority (it puts itself back to SCHED_OTHER every 50 ms)."""
    lane = Path(__file__).resolve().parents[1] / "idle_lane.py"
    counted, took = counted_as_other(f"{sys.executable} {lane} ", tmp_path, stay_normal=True,
                                     child_of_prefix=True)
    assert took > 0.05, "the process in the idle group did not run in the window"
    assert not counted
