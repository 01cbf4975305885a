"""What else the machine did while a cell's load ran: steal time, load, other processes' CPU.

`MachineWatch` brackets a cell's load. A background thread samples, once a `interval_s`, every
process's cumulative CPU time (psutil) and the 1-minute load average; at the end the cell gets
- `steal_share`: the hypervisor's steal time over all CPU time of the machine in the window
  (/proc/stat through psutil.cpu_times; on a shared VM the neighbours' memory traffic does not show
  here, which is why the calibration probe measures speed directly);
- `load_average_1m`: the mean of the samples;
- `other_cpu_cores`: CPU-seconds of every process that is neither one of the servers (the process
  trees of `server_pids`) nor inferload's own (this process and its descendants: load processes,
  the calibration probe), divided by the window's seconds: 1.0 is one core taken by other work.
  Work that yields to ours runs only on CPU time ours leaves idle, so it is not counted: a process in
  an idle cpu cgroup (`cpu.idle` 1) other than ours, or one under SCHED_IDLE (`chrt -i 0`, while
  inferload itself is not) that competes in our scheduling group. SCHED_IDLE ranks a task only inside
  its group: its cpu cgroup, and in the root cgroup with the kernel's autogroup on
  (kernel.sched_autogroup_enabled), its session. A SCHED_IDLE job in another session gets as large a
  share as ours (measured here: a normal busy loop beside three such loops got half a core), so it counts.
A process is counted from its first sample on (or from its start when it began inside the window),
until its last sample: a process that exits between two samples loses at most `interval_s` of CPU.
On Linux a sample reads /proc/<pid>/stat directly (about 3 ms for 150 processes); psutil's
process_iter took 60 ms a sample here, 6 % of a core at 1 Hz on the cores being measured. Elsewhere
psutil is used.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

__all__ = ["MachineWatch", "MachineWindow", "cpu_cgroup"]


@dataclass(frozen=True)
class MachineWindow:
    """The machine over one cell's window, as cell.json's `machine` records it (without the speed)."""

    window_ns: tuple[int, int]
    cpu_count: int
    steal_share: float | None
    load_average_1m: float | None
    other_cpu_cores: float | None


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


_SCHED_IDLE = 5  # the kernel's policy number; os.SCHED_IDLE where Python exposes it
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def _read(path: Path | str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return None


def cpu_cgroup(pid: int | str) -> str | None:
    """The process's path in the cpu cgroup hierarchy (v1's `cpu` line, else v2's), None if unreadable."""
    text = _read(f"/proc/{pid}/cgroup")
    if text is None:
        return None
    unified = None
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
        if controllers == "":
            unified = path
    return unified


class SchedulingGroups:
    """Which processes yield the CPU to ours: those in an idle cpu cgroup that is not ours, and those under
    SCHED_IDLE in our own scheduling group (cgroup, and session where the kernel's autogroup applies)."""

    def __init__(self) -> None:
        self._idle_paths: dict[str, bool] = {}
        self._of_process: dict[tuple[int, float], tuple[str | None, str | None]] = {}  # read once each
        v1 = _CGROUP_ROOT / "cpu"
        self._cpu_dir = v1 if (v1 / "cpu.shares").is_file() else _CGROUP_ROOT
        self._autogroup = (_read(_AUTOGROUP) or "0").strip() == "1"
        try:
            self._we_are_idle = os.sched_getscheduler(0) == _SCHED_IDLE
        except (AttributeError, OSError):
            self._we_are_idle = True  # cannot tell: count SCHED_IDLE work as other work
        self.ours = self.group_of("self")
        self._our_cgroup_idle = self.ours[0] is not None and self._idle(self.ours[0])

    def group_of(self, pid: int | str) -> tuple[str | None, str | None]:
        """(cpu cgroup, autogroup or None): the group whose share the process's threads compete for."""
        cgroup = cpu_cgroup(pid)
        autogroup = None
        if self._autogroup and cgroup == "/":  # autogroups apply to the root cgroup's tasks only
            text = _read(f"/proc/{pid}/autogroup")
            autogroup = text.split()[0] if text else None
        return cgroup, autogroup

    def _idle(self, cgroup: str) -> bool:
        """Is the cgroup, or a cgroup above it, marked idle?"""
        known = self._idle_paths.get(cgroup)
        if known is None:
            parts = [part for part in cgroup.split("/") if part]
            known = any((_read(Path(self._cpu_dir, *parts[:depth], "cpu.idle")) or "0").strip() == "1"
                        for depth in range(1, len(parts) + 1))
            self._idle_paths[cgroup] = known
        return known

    def yields(self, key: tuple[int, float], policy: int) -> bool:
        """Does the process `key` (pid, start time), under scheduling policy `policy`, yield to ours?"""
        group = self._of_process.get(key)
        if group is None:
            group = self._of_process[key] = self.group_of(key[0])
        cgroup = group[0]
        if cgroup is not None and cgroup != self.ours[0] and not self._our_cgroup_idle and self._idle(cgroup):
            return True
        return policy == _SCHED_IDLE and not self._we_are_idle and group == self.ours


def _snapshot(groups: SchedulingGroups | None = None) -> dict[tuple[int, float], tuple[int, float]]:
    """Every process: (pid, start time) -> (parent pid, CPU-seconds user + system so far); with `groups`,
    without the processes that yield the CPU to ours."""
    if not (_PROC / "self" / "stat").is_file():
        return _snapshot_psutil()
    found = {}
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # gone since the listing
        fields = text[text.rfind(b")") + 2:].split()  # after "pid (comm) ": state is field 0
        # field 1 ppid, 11 utime, 12 stime, 19 starttime, 38 policy (proc(5), counted from field 3)
        key = (int(entry.name), float(fields[19]))
        if groups is not None and groups.yields(key, int(fields[38]) if len(fields) > 38 else 0):
            continue
        cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS
        found[key] = (int(fields[1]), cpu_s)
    return found


def _snapshot_psutil() -> dict[tuple[int, float], tuple[int, float]]:
    found = {}
    for proc in psutil.process_iter(["ppid", "create_time", "cpu_times"]):
        info = proc.info
        if info["create_time"] is None or info["cpu_times"] is None or info["ppid"] is None:
            continue
        times = info["cpu_times"]
        found[(proc.pid, info["create_time"])] = (info["ppid"], times.user + times.system)
    return found


def _descendants(roots: Iterable[int], parents: dict[int, int]) -> set[int]:
    """`roots` and every process below them, from a pid -> parent pid map."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [root for root in roots if root in parents]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


class MachineWatch:
    """Around one cell's load: `with MachineWatch(lambda: pids) as watch: ...`, then `watch.window`."""

    def __init__(self, server_pids: Callable[[], Iterable[int]], interval_s: float = 1.0) -> None:
        self.server_pids = server_pids
        self.interval_s = interval_s
        self.window: MachineWindow | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[tuple[int, float], float] = {}  # (pid, start time) -> CPU-seconds at last sample
        self._ours: dict[tuple[int, float], bool] = {}
        self._other_s = 0.0
        self.others: dict[int, float] = {}  # CPU-seconds in the window of each process counted as other
        self._loads: list[float] = []
        self._start_ns = 0
        self._groups = SchedulingGroups()

    def __enter__(self) -> MachineWatch:
        self._start_ns = time.monotonic_ns()
        self._cpu_start = psutil.cpu_times()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, name="machine-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 + 5 * self.interval_s)
        self._sample()
        end_ns = time.monotonic_ns()
        cpu_end = psutil.cpu_times()
        total = sum(cpu_end) - sum(self._cpu_start)
        steal = getattr(cpu_end, "steal", None)
        steal_share = None
        if steal is not None and total > 0:
            steal_share = max(0.0, (steal - self._cpu_start.steal) / total)
        seconds = (end_ns - self._start_ns) / 1e9
        self.window = MachineWindow(
            window_ns=(self._start_ns, end_ns),
            cpu_count=psutil.cpu_count() or 1,
            steal_share=steal_share,
            load_average_1m=sum(self._loads) / len(self._loads) if self._loads else None,
            other_cpu_cores=self._other_s / seconds if seconds > 0 else None,
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self, *, first: bool = False) -> None:
        if hasattr(os, "getloadavg"):
            self._loads.append(os.getloadavg()[0])
        seen = _snapshot(self._groups)
        parents = {pid: ppid for (pid, _), (ppid, _) in seen.items()}
        ours = _descendants([os.getpid(), *self.server_pids()], parents)
        for key, (_, cpu) in seen.items():
            pid = key[0]
            if key not in self._ours:
                self._ours[key] = pid in ours
            before = self._last.get(key)
            if before is None:
                # a process already there at the start counts from now; one born since, from its start
                before = cpu if first else 0.0
            if not self._ours[key] and cpu > before:
                self._other_s += cpu - before
                self.others[pid] = self.others.get(pid, 0.0) + cpu - before
            self._last[key] = cpu


def wait_until_idle(pids: Iterable[int], *, below_cores: float = 0.2, cap_s: float = 5.0,
                    interval_s: float = 0.25) -> float:
    """Wait until the process trees of `pids` (a server that just took load) use less than `below_cores`
    of CPU over one `interval_s`, at most `cap_s`: an overloaded step's backlog must not spill into the
    next line's cell of the round. Returns the seconds waited."""
    roots = list(pids)
    if not roots:
        return 0.0
    started = time.monotonic()

    def used() -> float:
        seen = _snapshot()
        tree = _descendants(roots, {pid: ppid for (pid, _), (ppid, _) in seen.items()})
        return sum(cpu for (pid, _), (_, cpu) in seen.items() if pid in tree)

    before = used()
    while time.monotonic() - started < cap_s:
        time.sleep(interval_s)
        now = used()
        if (now - before) / interval_s < below_cores:
            break
        before = now
    return time.monotonic() - started
