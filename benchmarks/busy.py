"""Was the machine busy with other work while a benchmark ran? One rule for every benchmark.

Busy means: processes OUTSIDE the benchmark's own process tree took CPU during the run. The benchmark's
own load (its servers, load generators, workers: every descendant of its process) never makes it busy;
a load average does not tell the two apart, and on 2 cores a benchmark's own load always pushes it
above 1.

    with OtherWork() as other:      # samples in a thread, every 0.5 s by default
        run_the_benchmark()
    result["machine"]["other_work"] = other.result()   # busy, busy_reason, other_cpu_percent_*, ...
    if other.busy: ...

How: CPU time is counted, not sampled as a percentage. Each sample reads the machine's busy CPU time
(/proc/stat through psutil: user, nice, system, irq, softirq, steal; not idle or iowait) and the CPU
time of the benchmark's tree (every live process of it, with the time of the children each has
reaped, so a short-lived child is counted once by whoever waited for it). Other work over an interval
= machine CPU time - own CPU time, per second of wall time, in percent of one core. A process that
leaves the tree (double-forks into a daemon) counts as other work: benchmarks start servers as
children. Steal time (a hypervisor serving other guests) counts as other work too.

The run is busy when other work took more than BUSY_SHARE of the machine's CPUs on average over the
run, or more than BUSY_PEAK_SHARE of them in any one interval: either can shift a measurement.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = ["BUSY_PEAK_SHARE", "BUSY_SHARE", "OtherWork", "machine_busy_cpu_s", "tree_cpu_s"]

BUSY_SHARE = 0.10  # mean other work above 10 % of the machine (0.2 cores of 2): busy
BUSY_PEAK_SHARE = 0.50  # one interval with other work above half the machine: busy
TOP_OTHERS = 5  # the processes outside the tree that took most CPU, named in the result


def machine_busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all CPUs; idle and iowait excluded)."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds of a process tree: each live member's own time plus its reaped children's."""
    try:
        root = psutil.Process(root_pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in members:
        try:
            t = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _tree_pids(root_pid: int) -> set[int]:
    try:
        root = psutil.Process(root_pid)
        return {root_pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


@dataclass
class OtherWork:
    """Samples, during a `with` block, the CPU taken by processes outside the tree of `root_pid`."""

    interval_s: float = 0.5
    root_pid: int = field(default_factory=os.getpid)
    cpus: int = field(default_factory=lambda: psutil.cpu_count() or 1)
    intervals: list[tuple[float, float]] = field(default_factory=list)  # (wall s, other CPU s)
    _others: dict[tuple[int, str], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> OtherWork:
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="other-work", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _process_times(self) -> dict[tuple[int, str], float]:
        """CPU seconds of every process outside the tree now (to name the biggest other consumers)."""
        mine = _tree_pids(self.root_pid)
        seen: dict[tuple[int, str], float] = {}
        for process in psutil.process_iter(["pid", "name", "cpu_times"]):
            info = process.info
            if info["pid"] in mine or info["cpu_times"] is None:
                continue
            seen[info["pid"], info["name"] or "?"] = info["cpu_times"].user + info["cpu_times"].system
        return seen

    def _sample(self) -> None:
        wall, machine, own = time.monotonic(), machine_busy_cpu_s(), tree_cpu_s(self.root_pid)
        first = self._process_times()
        while not self._stop.wait(self.interval_s):
            now, machine_now, own_now = time.monotonic(), machine_busy_cpu_s(), tree_cpu_s(self.root_pid)
            other = max(0.0, (machine_now - machine) - max(0.0, own_now - own))
            self.intervals.append((now - wall, other))
            wall, machine, own = now, machine_now, own_now
        last = self._process_times()
        self._others = {key: last[key] - first.get(key, 0.0) for key in last}

    @property
    def other_cpu_percent_mean(self) -> float | None:
        """Other work over the whole run, in percent of one core (200 = both cores of 2)."""
        wall = sum(w for w, _ in self.intervals)
        return 100 * sum(o for _, o in self.intervals) / wall if wall > 0 else None

    @property
    def other_cpu_percent_max(self) -> float | None:
        return max((100 * o / w for w, o in self.intervals if w > 0), default=None)

    @property
    def busy_reason(self) -> str | None:
        mean, peak = self.other_cpu_percent_mean, self.other_cpu_percent_max
        if mean is None or peak is None:
            return None
        capacity = 100 * self.cpus
        if mean > BUSY_SHARE * capacity:
            return (f"other processes took {mean:.0f} % of one core on average during the run "
                    f"(busy above {BUSY_SHARE * capacity:.0f} %, {BUSY_SHARE:.0%} of {self.cpus} CPUs)")
        if peak > BUSY_PEAK_SHARE * capacity:
            return (f"other processes took {peak:.0f} % of one core in one {self.interval_s:g} s "
                    f"interval (busy above {BUSY_PEAK_SHARE * capacity:.0f} %, {BUSY_PEAK_SHARE:.0%} of "
                    f"{self.cpus} CPUs)")
        return None

    @property
    def busy(self) -> bool:
        return self.busy_reason is not None

    def result(self) -> dict[str, Any]:
        """What a results file records about other work during the run."""
        mean, peak = self.other_cpu_percent_mean, self.other_cpu_percent_max
        wall = sum(w for w, _ in self.intervals)
        top = sorted(self._others.items(), key=lambda item: -item[1])[:TOP_OTHERS]
        return {
            "busy": self.busy,
            "busy_reason": self.busy_reason,
            "rule": (f"busy when processes outside the benchmark's own process tree took over "
                     f"{BUSY_SHARE:.0%} of the machine's CPU on average, or over {BUSY_PEAK_SHARE:.0%} "
                     f"in one {self.interval_s:g} s interval (benchmarks/busy.py)"),
            "other_cpu_percent_mean": None if mean is None else round(mean, 1),
            "other_cpu_percent_max": None if peak is None else round(peak, 1),
            "cpus": self.cpus,
            "sampled_s": round(wall, 1),
            "intervals": len(self.intervals),
            "top_other_processes": [
                {"pid": pid, "name": name, "cpu_s": round(seconds, 2)}
                for (pid, name), seconds in top if seconds > 0
            ],
        }
