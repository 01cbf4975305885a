"""Start a server process in its own process group, wait for it to be healthy, and stop its whole tree.

Servers fork helpers (TorchServe's Java frontend starts Python workers), so stopping means: SIGTERM the
process group, wait, SIGKILL every leftover of the tree, then check the ports are released. Everything
works from a pid alone, so `inferload serve down` in another process can do it too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from serving.cpusets import format_cpu_list
from serving.ports import LOOPBACK, busy_ports

HealthCheck = Callable[[], str | None]
"""Returns None when healthy, else a short description of what is not ready yet."""


class ServerStartError(RuntimeError):
    """A server exited early or did not become healthy in time; the message carries its log tail."""


class ServerStopError(RuntimeError):
    """A server's processes or ports were still there after SIGKILL."""


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to (re)start one server: its command line, environment and log file."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    cpus: tuple[int, ...] | None = None  # pin the whole process tree here (taskset); None: unpinned

    @property
    def command(self) -> tuple[str, ...]:
        """argv as started: behind `taskset --cpu-list` when pinned (threads and children inherit it)."""
        if self.cpus is None:
            return self.argv
        return (taskset(), "--cpu-list", format_cpu_list(self.cpus), *self.argv)


def taskset() -> str:
    """The taskset binary (util-linux); pinned servers cannot start without it."""
    found = shutil.which("taskset")
    if found is None:
        raise ServerStartError("taskset not found (util-linux): install it, or run the servers unpinned")
    return found


@dataclass(frozen=True)
class ProcessHandle:
    """A started server: pid plus its creation time, so a recycled pid is never mistaken for it."""

    pid: int
    create_time: float

    def process(self) -> psutil.Process | None:
        """The live process, or None if it exited (or the pid now belongs to another process)."""
        try:
            proc = psutil.Process(self.pid)
            if not self._is(proc) or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self.process() is not None

    def owns_group(self) -> bool:
        """Is process group `pid` still this server's? Yes while the leader lives, and while no process
        holds its pid: the kernel reuses a pid only once no group of that id is left. A live process of
        that pid with another creation time leads someone else's group (another test's server)."""
        try:
            return self._is(psutil.Process(self.pid))
        except psutil.Error:
            return True

    def _is(self, proc: psutil.Process) -> bool:
        """Is `proc` the process this handle started (same pid, same creation time)?"""
        return abs(proc.create_time() - self.create_time) <= 0.01

    def tree(self) -> list[psutil.Process]:
        """The process, its descendants, and anything else still in its process group."""
        root = self.process()
        found: dict[int, psutil.Process] = {}
        if root is not None:
            found[root.pid] = root
            try:
                for child in root.children(recursive=True):
                    found[child.pid] = child
            except psutil.Error:
                pass
        for proc in psutil.process_iter() if self.owns_group() else ():
            try:
                if proc.pid not in found and os.getpgid(proc.pid) == self.pid:
                    found[proc.pid] = proc
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return list(found.values())


def spawn(spec: LaunchSpec) -> tuple[ProcessHandle, subprocess.Popen[bytes]]:
    """Start the server detached in a new session (its own process group), output to its log file."""
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    with open(spec.log_path, "ab") as log:
        argv = spec.command
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
        )
    handle = ProcessHandle(popen.pid, psutil.Process(popen.pid).create_time())
    return handle, popen


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file (or a note that there is none), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log file at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in tail) if tail else "(log file is empty)"


def wait_healthy(
    servers: Mapping[str, tuple[ProcessHandle, LaunchSpec, HealthCheck]],
    timeout_s: float,
    *,
    poll_s: float = 0.25,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Wait until every server's health check passes; fail on the first early exit or at the timeout.

    Several servers are polled in one loop so they start concurrently.
    """
    deadline = time.monotonic() + timeout_s
    waiting = dict(servers)
    last_state: dict[str, str] = {}
    next_report = time.monotonic() + 10.0
    while waiting:
        for name, (handle, spec, check) in list(waiting.items()):
            state = check()
            if state is None:
                if progress:
                    progress(f"{name} is healthy")
                del waiting[name]
                continue
            last_state[name] = state
            if not handle.alive():
                raise ServerStartError(
                    f"{name} exited during start-up (pid {handle.pid}) while waiting for: {state}.\n"
                    f"  log file {spec.log_path}, last lines:\n{log_tail(spec.log_path)}"
                )
        if not waiting:
            return
        now = time.monotonic()
        if now >= deadline:
            name, (handle, spec, _) = next(iter(waiting.items()))
            raise ServerStartError(
                f"{name} was not healthy after {timeout_s:.0f} s: still waiting for: {last_state[name]}.\n"
                f"  log file {spec.log_path}, last lines:\n{log_tail(spec.log_path)}\n"
                f"  (a slow machine may need a longer --timeout)"
            )
        if progress and now >= next_report:
            progress("waiting for " + "; ".join(f"{n}: {last_state[n]}" for n in waiting))
            next_report = now + 10.0
        time.sleep(poll_s)


def stop(
    handle: ProcessHandle,
    *,
    name: str,
    ports: Iterable[int] = (),
    grace_s: float = 20.0,
    host: str = LOOPBACK,
) -> None:
    """SIGTERM the group, wait `grace_s`, SIGKILL leftovers of the tree; then wait for the ports to close."""
    procs = handle.tree()
    if handle.alive():
        _signal_group(handle.pid, signal.SIGTERM)
    for proc in procs:
        _send(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    leftovers = alive + [p for p in handle.tree() if p.pid not in {a.pid for a in alive}]
    if leftovers:
        if handle.owns_group():
            _signal_group(handle.pid, signal.SIGKILL)
        for proc in leftovers:
            _send(proc, signal.SIGKILL)
        _, alive = psutil.wait_procs(leftovers, timeout=10.0)
        if alive:
            raise ServerStopError(f"{name}: processes {[p.pid for p in alive]} survived SIGKILL")
    _wait_ports_released(list(ports), name=name, host=host)


def _wait_ports_released(ports: list[int], *, name: str, host: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        busy = busy_ports(ports, host)
        if not busy:
            return
        if time.monotonic() >= deadline:
            described = ", ".join(f"{port} held by {owner}" for port, owner in busy)
            raise ServerStopError(f"{name} stopped but its ports are still bound: {described}")
        time.sleep(0.2)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _send(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass
