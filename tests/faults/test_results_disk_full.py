"""A results disk that fills up mid-run (a small tmpfs): the run stops with a clear error naming the
file and the reason, and keeps what it had written.

`inferload load`: the load stops at once (not at the end of its window), the error says which
records file could not be written and why, and the records written before read back, each request
at most once. `inferload run`: the matrix stops (it does not fail cell after cell), the finished
cells stay done, and once there is room again the same command resumes: finished cells are not
rerun, the rest are done.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fault_host import REPO, FaultHost
from fault_runs import external_matrix, load
from tiny_disk import resize, tiny_disk

from loadtest import read_records

pytestmark = [pytest.mark.servers, pytest.mark.needs("tmpfs")]

DISK_FULL = "No space left on device"


def test_a_load_whose_disk_fills_stops_at_once_and_keeps_its_records(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    # ~230 bytes a record at 300/s: a 192 kB disk is full about 3 s into a 20 s window
    with tiny_disk(tmp_path / "disk", 192) as disk:
        run = load(fault_host.load_args("grpc"), disk / "run", rate=300, duration_s=20, timeout_s=5)
        records = list(read_records(disk / "run" / "requests.0.jsonl"))
    assert run.returncode == 1, run.output
    assert "could not write the results" in run.output and DISK_FULL in run.output, run.output
    assert "requests.0.jsonl" in run.output, run.output
    assert run.wall_s < 20, run.output  # stopped when the disk filled, not at the end of the window
    assert len(records) > 100  # what was flushed before is kept and reads back
    seqs = Counter(record.seq for record in records)
    assert max(seqs.values()) == 1  # no request twice


def run_matrix(matrix_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferload", "run", str(matrix_path), "--out", str(out),
                           "--no-progress", "--no-floor"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def cell_files(out: Path) -> dict[str, str]:
    """cell id -> the text of its cell.json, for the cells that have one."""
    return {path.parent.name: path.read_text() for path in sorted(out.glob("cells/*/cell.json"))}


@pytest.mark.slow
def test_a_matrix_whose_disk_fills_stops_keeps_its_cells_and_resumes_once_there_is_room(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    matrix_path = tmp_path / "disk-full.yaml"
    matrix_path.write_text(external_matrix(  # four equal cells
        "disk-full", address=fault_host.address, ports=fault_host.ports, features=fault_host.features,
        rates=[100, 101], duration_s=1.5))
    # one cell (~150 records, its load.json and server metrics) takes ~60-90 kB: 150 kB holds one or two
    with tiny_disk(tmp_path / "disk", 150) as disk:
        out = disk / "results"
        first = run_matrix(matrix_path, out)
        assert first.returncode == 1, first.stdout + first.stderr
        assert "the results disk failed, so the matrix stopped" in first.stderr, first.stderr
        assert DISK_FULL in first.stderr, first.stderr
        assert "Traceback" not in first.stderr, first.stderr  # one clear error, from no thread a traceback
        kept = cell_files(out)
        statuses = {cell_id: json.loads(text)["status"] for cell_id, text in kept.items()}
        assert 1 <= list(statuses.values()).count("done") < 4, (statuses, first.stderr)
        assert "failed" not in statuses.values()  # a full disk is not the cells' fault: none marked failed

        resize(disk, 4096)  # room again
        second = run_matrix(matrix_path, out)
        assert second.returncode == 0, second.stdout + second.stderr
        after = cell_files(out)
    assert len(after) == 4 and all(json.loads(text)["status"] == "done" for text in after.values())
    for cell_id, text in kept.items():  # what was done stays as it was: not rerun
        if statuses[cell_id] == "done":
            assert after[cell_id] == text
