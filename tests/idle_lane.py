"""Run a command as work that yields the CPU to everything else: `python tests/idle_lane.py CMD...`.

`make test` runs the lanes that may share the machine through this, so that the `alone` lane beside
them (schedules, timing bounds) gets the CPU whenever it wants it.

SCHED_IDLE (`chrt -i 0`) alone is not enough where the kernel groups tasks by session
(kernel.sched_autogroup_enabled, on here): SCHED_IDLE only ranks a task inside its own group, and
every server these tests start in a session of its own (start_new_session, nginx's daemon) gets a group
of its own with a full share. Measured here: a normal-priority busy loop beside three SCHED_IDLE loops
in another session got 2.5 of 5 CPU-seconds; in the same session, or in an idle cgroup, all 5.

So, where it can (root, a cgroup `cpu` controller), the command and all it starts run in a cgroup of
its own marked idle (`cpu.idle` 1; else the smallest share), under SCHED_IDLE as well; the group is
removed afterwards. Where it cannot, SCHED_IDLE only, with a note saying what that leaves out.
Exit status: the command's. `--check`: 0 where an idle cgroup can be made, else 1 with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from inferload.machine import cpu_cgroup

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_hierarchy() -> tuple[Path, str] | None:
    """Where this process's cpu cgroup lives, and the hierarchy's version ("v1" or "v2"); None: none
    writable here."""
    v1, v2_controllers = CGROUP_ROOT / "cpu", CGROUP_ROOT / "cgroup.subtree_control"
    if (v1 / "cpu.shares").is_file():
        base, version = v1, "v1"
    elif v2_controllers.is_file() and "cpu" in v2_controllers.read_text().split():
        base, version = CGROUP_ROOT, "v2"
    else:
        return None
    return (base, version) if os.access(base, os.W_OK) else None


def mark_idle(group: Path, version: str) -> str:
    """The strongest "take only what is left" the kernel offers this group; returns what was set."""
    idle = group / "cpu.idle"
    if idle.is_file():
        with contextlib.suppress(OSError):
            idle.write_text("1")
            return "cpu.idle 1"
    share, value = ("cpu.shares", "2") if version == "v1" else ("cpu.weight", "1")
    (group / share).write_text(value)
    return f"{share} {value}"


@contextlib.contextmanager
def idle_cgroup() -> Iterator[str | None]:
    """This process in a new idle cpu cgroup until the block ends (what its children inherit), then back
    in its own and the group removed. Yields a description, or None where no cgroup could be made."""
    found = cpu_hierarchy()
    if found is None:
        yield None
        return
    base, version = found
    group = base / f"inferload-idle-{os.getpid()}"
    home = Path(base, (cpu_cgroup("self") or "/").lstrip("/"))
    try:
        group.mkdir()
        how = mark_idle(group, version)
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        yield None
        return
    try:
        yield f"{group} ({how})"
    finally:
        (home / "cgroup.procs").write_text(str(os.getpid()))
        try:
            group.rmdir()
        except OSError as exc:  # a process the lane left running is still in it
            print(f"note: {group} not removed ({exc.strerror}): a process the lane started is still in it",
                  file=sys.stderr)


NO_GROUP = ("no idle cpu cgroup can be made here (needs root and a cgroup cpu controller): SCHED_IDLE "
            "alone yields only inside its own session, and servers started in sessions of their own "
            "would compete with the `alone` lane at full share")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    if argv == ["--check"]:  # can lanes be made idle here? (the Makefile runs `alone` after them if not)
        with idle_cgroup() as group:
            if group is None:
                print(f"note: {NO_GROUP}", file=sys.stderr)
            return 0 if group is not None else 1
    with idle_cgroup() as group:
        if group is None:
            print(f"note: {NO_GROUP}", file=sys.stderr)
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError) as exc:
            print(f"note: SCHED_IDLE not available ({exc}): this lane runs at normal priority",
                  file=sys.stderr)
        return run_forwarding_signals(argv)


def run_forwarding_signals(argv: list[str]) -> int:
    """The command's exit status; SIGTERM (the Makefile's clean-up) and SIGINT reach it, not us."""
    child = subprocess.Popen(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, _frame: child.send_signal(received))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
