"""benchmarks/busy.py: a benchmark's own processes never make it "busy"; processes outside its tree do.

CPU time is the measure, so these checks hold on a loaded machine too: each burner spins until it has
used a fixed amount of CPU, however long the scheduler makes that take."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from busy import BUSY_PEAK_SHARE, BUSY_SHARE, OtherWork, machine_busy_cpu_s, tree_cpu_s  # noqa: E402

BURN_S = 0.6
BURN = f"import time\nwhile time.process_time() < {BURN_S}: pass\n"


def burn_in_own_tree() -> None:
    subprocess.run([sys.executable, "-c", BURN], check=True, timeout=120)


def burn_outside_own_tree() -> None:
    """A burner reparented away from us (double fork): other work, as another developer's job is."""
    read, write = os.pipe()
    launcher = subprocess.Popen(
        [sys.executable, "-c",
         "import os, subprocess, sys\n"
         f"p = subprocess.Popen([sys.executable, '-c', {BURN!r}], stdout=subprocess.DEVNULL)\n"
         "print(p.pid, flush=True)\n"],
        stdout=write, close_fds=True)
    os.close(write)
    launcher.wait(timeout=60)  # the launcher is gone: its child now belongs to init
    with os.fdopen(read) as pipe:
        burner = int(pipe.readline())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if psutil.Process(burner).status() == psutil.STATUS_ZOMBIE:  # done; init reaps it
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError("the outside burner did not finish")


def test_cpu_of_the_own_tree_counts_a_child_after_it_has_exited() -> None:
    before = tree_cpu_s(os.getpid())
    burn_in_own_tree()
    assert tree_cpu_s(os.getpid()) - before >= BURN_S * 0.9  # /proc counts in clock ticks (10 ms)


def test_cpu_of_a_process_outside_the_tree_is_other_work() -> None:
    machine, own = machine_busy_cpu_s(), tree_cpu_s(os.getpid())
    burn_outside_own_tree()
    other = (machine_busy_cpu_s() - machine) - (tree_cpu_s(os.getpid()) - own)
    assert other >= BURN_S * 0.9  # /proc/stat counts in clock ticks


def test_a_run_beside_an_outside_burner_is_busy_and_names_it() -> None:
    with OtherWork(interval_s=0.1) as other:
        burn_outside_own_tree()
    result = other.result()
    assert result["busy"] and result["busy_reason"]
    assert result["intervals"] >= 1 and result["other_cpu_percent_mean"] > 0


@pytest.mark.parametrize(("other_cpu_s", "busy"), [
    ((0.1, 0.2, 0.0, 0.1), False),  # 2 CPUs: 10 % of one core on average (busy above 20), peak 20 %
    ((0.3, 0.3, 0.3, 0.3), True),  # 30 % on average: above BUSY_SHARE of the machine
    ((0.0, 0.0, 0.0, 0.6), False),  # 15 % on average, 60 % at the peak (busy above 100)
    ((0.0, 0.0, 0.0, 1.2), True),  # 30 % on average, and one second at 120 %: above BUSY_PEAK_SHARE
])
def test_the_rule_reads_mean_and_peak_against_the_machine(other_cpu_s: tuple[float, ...], busy: bool) -> None:
    """Four 1 s intervals on 2 CPUs, each with `other_cpu_s` seconds of other work."""
    assert (BUSY_SHARE, BUSY_PEAK_SHARE) == (0.10, 0.50)
    other = OtherWork(cpus=2)
    other.intervals = [(1.0, seconds) for seconds in other_cpu_s]
    assert other.busy is busy
    assert other.other_cpu_percent_mean == pytest.approx(100 * sum(other_cpu_s) / 4)
