"""The server monitor writes its samples beside the records: when that disk fills, the monitor stops
sampling and says so on the thread that runs the load (where a full results disk is told as one clear
error), never as a traceback from its sampling thread."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from tiny_disk import tiny_disk

from serving import ServerMonitor
from serving.metrics_file import MonitoredServer

pytestmark = pytest.mark.needs("tmpfs")


def test_a_monitor_whose_disk_fills_raises_the_disk_error_on_exit_and_prints_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    external = MonitoredServer("torchserve", "torchserve", "http://127.0.0.1:9/metrics")  # nothing there
    with tiny_disk(tmp_path / "disk", 8) as disk:
        with pytest.raises(OSError) as raised, ServerMonitor([external], disk, interval_s=0.005) as monitor:
            deadline = time.monotonic() + 20
            while os.statvfs(disk).f_bavail > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # a few more samples, that no longer fit
    assert raised.value.errno == errno.ENOSPC
    assert monitor.samples_written > 0  # it sampled until the disk was full
    assert thread_errors == []
