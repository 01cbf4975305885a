"""A server's process group is only signalled while it is still that server's: once the leader's pid
belongs to another process (another test's server, started in its own session), the group is not ours."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

from serving.processes import ProcessHandle


def test_the_live_leader_owns_its_group() -> None:
    me = psutil.Process(os.getpid())
    assert ProcessHandle(me.pid, me.create_time()).owns_group()


def test_a_pid_now_held_by_another_process_owns_no_group() -> None:
    me = psutil.Process(os.getpid())
    recycled = ProcessHandle(me.pid, me.create_time() - 60.0)  # "started a minute earlier": not this process
    assert not recycled.owns_group()
    assert recycled.tree() == []  # nor does it collect the other process's group


def test_a_dead_leaders_group_is_still_its_own() -> None:
    """The leader exited and nobody holds its pid: members of its group may live on (the kernel does not
    reuse the pid while the group has any), so the group is still the server's to stop."""
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    created = psutil.Process(child.pid).create_time()
    child.wait()
    assert ProcessHandle(child.pid, created).owns_group()
