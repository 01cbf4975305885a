"""The load worker's safeguards on their own (loadtest/_safeguards.py): a worker whose parent is gone
stops, and a records writer whose disk refuses writes stops the run once and says where and why.

The parent's end is a real closed pipe (a child interpreter whose stdin we close); the refusing disk
is /dev/full, whose every write fails with ENOSPC as on a full disk.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loadtest._safeguards import GuardedWriter
from loadtest._schema import RequestRecord, RunHeader

CHILD = textwrap.dedent("""
    import signal, sys, time
    from loadtest._safeguards import watch_parent
    signal.signal(signal.SIGTERM, lambda *_: (print("stopped", flush=True), sys.exit(0)))
    watch_parent()
    print("watching", flush=True)
    time.sleep(60)
    print("still running", flush=True)
""")


def test_a_worker_whose_parent_closed_its_stdin_gets_sigterm() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "watching"
        child.stdin.close()  # what the kernel does when the parent dies, SIGKILL included
        assert child.stdout.readline().strip() == "stopped"
        assert child.wait(timeout=10) == 0
    finally:
        if child.poll() is None:
            child.kill()


def record(seq: int) -> RequestRecord:
    return RequestRecord(seq=seq, stream=0, server="torchserve", protocol="grpc", batch=1, scheduled_ns=seq,
                         sent_ns=seq, done_ns=seq + 1, bytes_out=4096, bytes_in=300, status="ok", code=0,
                         error=None)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_disk_that_refuses_writes_stops_the_run_once_and_names_the_file_and_reason() -> None:
    stops: list[int] = []
    header = RunHeader(run="t", stream=0, settings={}, measure_start_ns=0, measure_end_ns=1)
    writer = GuardedWriter(Path("/dev/full"), header, on_failure=lambda: stops.append(1))
    for seq in range(3):
        writer.add(record(seq))
    writer.flush_if_due()
    writer.close()  # no second error: the run is already stopped
    assert stops == [1]
    assert writer.failure == "/dev/full: No space left on device (errno 28)"
    assert writer.unwritten == 3


def test_a_writable_disk_keeps_every_record_and_never_stops_the_run(tmp_path: Path) -> None:
    from loadtest import read_records

    stops: list[int] = []
    header = RunHeader(run="t", stream=0, settings={}, measure_start_ns=0, measure_end_ns=1)
    writer = GuardedWriter(tmp_path / "requests.0.jsonl", header, on_failure=lambda: stops.append(1))
    for seq in range(5):
        writer.add(record(seq))
    writer.close()
    assert stops == [] and writer.failure is None and writer.unwritten == 0
    assert [r.seq for r in read_records(tmp_path / "requests.0.jsonl")] == [0, 1, 2, 3, 4]
