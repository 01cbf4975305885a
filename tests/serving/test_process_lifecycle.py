"""Process management on real (tiny) processes: start detached, detect early exit, time out with the log
tail, and stop a whole tree (even one that ignores SIGTERM) so no process and no port is left."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from serving.ports import Ports, is_free
from serving.processes import LaunchSpec, ServerStartError, spawn, stop, wait_healthy

# A "server" that starts a child, listens on a port, and (optionally) ignores SIGTERM.
TREE_SERVER = textwrap.dedent(
    """
    import signal, socket, subprocess, sys, time
    if sys.argv[2] == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    sock = socket.socket(); sock.bind(("127.0.0.1", int(sys.argv[1]))); sock.listen()
    print("listening", flush=True)
    time.sleep(600)
    """
)


def launch(tmp_path: Path, *args: str, code: str = TREE_SERVER) -> LaunchSpec:
    return LaunchSpec(name="toy", argv=(sys.executable, "-c", code, *args), log_path=tmp_path / "toy.log")


@pytest.mark.parametrize("behaviour", ["polite", "stubborn"])
def test_stop_leaves_no_process_and_no_port(tmp_path: Path, behaviour: str) -> None:
    port = Ports.free().tfserving_rest
    spec = launch(tmp_path, str(port), behaviour)
    handle, _ = spawn(spec)
    wait_healthy({"toy": (handle, spec, lambda: None if not is_free(port) else f"port {port}")}, timeout_s=30)
    tree = handle.tree()
    assert len(tree) == 2  # the server and its child

    stop(handle, name="toy", ports=[port], grace_s=1.0)

    assert not any(psutil.pid_exists(p.pid) and p.is_running() and p.status() != "zombie" for p in tree)
    assert is_free(port)
    assert not handle.alive()


def test_early_exit_is_reported_with_the_log_tail(tmp_path: Path) -> None:
    spec = launch(tmp_path, code="import sys; print('model not found: /nowhere'); sys.exit(3)")
    handle, _ = spawn(spec)
    with pytest.raises(ServerStartError) as error:
        wait_healthy({"toy": (handle, spec, lambda: "GET /ready")}, timeout_s=30)
    message = str(error.value)
    assert "toy exited during start-up" in message
    assert "GET /ready" in message
    assert "model not found: /nowhere" in message
    assert str(spec.log_path) in message


def test_timeout_names_the_server_what_was_awaited_and_the_log(tmp_path: Path) -> None:
    spec = launch(tmp_path, code="print('still loading', flush=True); import time; time.sleep(600)")
    handle, _ = spawn(spec)
    try:
        started = time.monotonic()
        with pytest.raises(ServerStartError) as error:
            wait_healthy({"toy": (handle, spec, lambda: "model to be AVAILABLE")}, timeout_s=1.0)
        assert time.monotonic() - started < 20
    finally:
        stop(handle, name="toy", grace_s=1.0)
    message = str(error.value)
    assert "toy was not healthy after 1 s" in message
    assert "model to be AVAILABLE" in message
    assert "still loading" in message


def test_server_runs_in_its_own_process_group(tmp_path: Path) -> None:
    import os

    spec = launch(tmp_path, code="import time; time.sleep(600)")
    handle, _ = spawn(spec)
    try:
        assert os.getpgid(handle.pid) == handle.pid != os.getpgid(0)
    finally:
        stop(handle, name="toy", grace_s=1.0)
