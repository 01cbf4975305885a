"""A results disk that fails stops the whole matrix with one clear error (inferload/results_disk.py),
where a dying server only fails its cell: every later cell would fail alike. Unit test of the runner
with the bookkeeping tests' fake stages; the real disk-full runs are in tests/faults."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_runner_bookkeeping import FakeStages, cell_ids, run, status

from inferload.results_disk import results_disk_failure
from inferload.runner import RunError
from loadtest import ResultsWriteError


@dataclass
class FullDiskAt(FakeStages):
    """The fake stages, with the load of one cell failing as a full disk does."""

    disk_full_at: str | None = None
    failure: BaseException | None = None

    def run_load(self, settings: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        result = super().run_load(settings, out_dir)
        if settings["run"] == self.disk_full_at:
            assert self.failure is not None
            raise self.failure
        return result


@pytest.mark.parametrize("failure", [
    ResultsWriteError("cells/x/requests.0.jsonl: No space left on device (errno 28)", Path("cells/x")),
    OSError(errno.ENOSPC, "No space left on device", "cells/x/load.json"),
], ids=["records", "load.json"])
def test_a_full_disk_stops_the_matrix_keeps_the_done_cells_and_says_how_to_resume(
    tmp_path: Path, failure: BaseException
) -> None:
    ids = cell_ids()
    stages = FullDiskAt(disk_full_at=ids[1], failure=failure)
    with pytest.raises(RunError) as raised:
        run(tmp_path / "out", stages)
    message = str(raised.value)
    assert "the results disk failed, so the matrix stopped" in message
    assert "No space left on device" in message and "cells/x/" in message
    assert "run the same command again" in message
    assert stages.loads[-1] == ids[1]  # nothing after the failing cell was tried (in whatever order)
    assert all(status(tmp_path / "out", cell_id) == "done" for cell_id in stages.loads[:-1])
    assert status(tmp_path / "out", ids[1]) is None  # not "failed": it is redone on resume
    assert len(stages.loads) < len(ids)
    assert all(server.stopped for server in stages.servers)  # the servers were stopped on the way out


def test_other_errors_are_not_taken_for_a_disk_failure() -> None:
    assert results_disk_failure(ConnectionError("connection reset by peer")) is None
    assert results_disk_failure(OSError(errno.ECONNREFUSED, "Connection refused")) is None
    assert results_disk_failure(OSError(errno.EROFS, "Read-only file system", "out/x")) == (
        "out/x: Read-only file system (errno 30)")
