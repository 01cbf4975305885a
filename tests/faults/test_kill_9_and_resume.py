"""`kill -9` of the process that drives the load, mid-run: nothing it started goes on loading the server,
and rerunning a killed matrix resumes it without redoing or losing a cell.

SIGKILL runs no handler, so the load workers learn of their parent's end only from their stdin (the
pipe closes with it): each stops its schedule within a couple of seconds instead of running out its
window beside whatever runs next. The matrix's bookkeeping is on disk (cell.json written atomically
when a cell is done), so a rerun skips the finished cells, moves the interrupted one aside
(`attempts/`) and runs it and the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from accounting import audit
from fault_host import REPO, FaultHost
from fault_runs import done_cells, external_matrix

pytestmark = pytest.mark.servers

ORPHAN_GRACE_S = 15.0  # the worker's drain on stop (2 s) plus start-up slack on 2 shared cores


def workers_of(process: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if "loadtest._worker" in " ".join(child.cmdline())]


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def kill_9(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def assert_orphans_stop(workers: list[psutil.Process]) -> None:
    gone, alive = psutil.wait_procs(workers, timeout=ORPHAN_GRACE_S)
    for worker in alive:  # do not leave them loading the server for the next tests
        worker.kill()
    assert not alive, f"load workers still running {ORPHAN_GRACE_S} s after their parent was killed"


def test_a_load_killed_with_sigkill_leaves_no_worker_loading_the_server(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "inferload", "load", *fault_host.load_args("grpc"), "--rate", "20",
            "--duration", "60", "--warmup", "0", "--out", str(out), "--quiet"]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = lambda: (out / "requests.0.jsonl").is_file() and workers_of(process)  # noqa: E731
        wait_for(started, 120, "the load to start")
        time.sleep(1.0)
        workers = workers_of(process)
        kill_9(process)
        assert_orphans_stop(workers)
    finally:
        if process.poll() is None:
            process.kill()
    records = audit(out)
    assert records.found > 0 and records.duplicated == 0  # what it sent before is on disk, once each


@pytest.mark.slow
def test_a_matrix_killed_mid_cell_resumes_without_redoing_or_losing_a_cell(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    matrix_path = tmp_path / "killed.yaml"
    matrix_path.write_text(external_matrix(  # four short cells
        "killed", address=fault_host.address, ports=fault_host.ports, features=fault_host.features,
        rates=[20, 30], duration_s=3))
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "inferload", "run", str(matrix_path), "--out", str(out), "--no-progress",
            "--no-floor"]
    runner = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # kill it while a cell after the first one is loading the server
        wait_for(lambda: done_cells(out) and workers_of(runner), 300, "a second cell to be under way")
        workers = workers_of(runner)
        before = done_cells(out)
        kill_9(runner)
        assert_orphans_stop(workers)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert 1 <= len(before) < 4

    rerun = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    after = done_cells(out)
    assert len(after) == 4  # none lost
    for cell_id, text in before.items():
        assert after[cell_id] == text  # not redone
    assert "already done" in rerun.stdout, rerun.stdout
    assert list((out / "attempts").iterdir()), "the interrupted cell was not kept aside"
    for cell_id in after:  # and each cell's records are whole: one record per scheduled request
        records = audit(out / "cells" / cell_id)
        assert records.complete, (cell_id, records)
