"""`locust -f loadtest/` runs our open-loop users headless, feeds Locust's stats, and scales out."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
from arrival_counts import missing_arrivals
from locust_runs import run_locust, users, worker_processes

from loadtest import read_header, read_records
from loadtest._schema import run_streams

pytestmark = pytest.mark.servers


def locust(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_locust(cwd, "--headless", "--only-summary", *args, timeout=timeout)


def stats_row(csv_prefix: Path, name: str) -> dict[str, str]:
    with open(f"{csv_prefix}_stats.csv", newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row["Name"] == name)


# keeps a schedule (a rate floor, every arrival of each stream): beside 3 SCHED_IDLE workers Locust fell
# behind (52 of ~150 requests; a worker process with no record in 3 s), so it runs in the alone lane
@pytest.mark.alone
def test_a_short_headless_run_exits_0_and_writes_its_csv(port_of, small_features, tmp_path) -> None:
    result = locust(
        tmp_path,
        *users(2, run_time="3s", rate=50),
        "--features",
        str(small_features),
        "--host",
        f"http://127.0.0.1:{port_of('torchserve', 'rest-binary')}",
        "--csv",
        str(tmp_path / "run"),
        "TorchServeRestBinary",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    row = stats_row(tmp_path / "run", "torchserve")
    assert row["Type"] == "rest-binary"
    # 50/s for 3 s is ~150 arrivals; a generous floor (shared CPUs), the exact rate is tested elsewhere
    assert int(row["Request Count"]) > 75 and int(row["Failure Count"]) == 0


def test_failing_requests_make_locust_exit_non_zero(port_of, small_features, tmp_path) -> None:
    result = locust(
        tmp_path,
        *users(1, run_time="2s", rate=50),
        "--features",
        str(small_features),
        "--model-name",
        "no-such-model",
        "--host",
        f"http://127.0.0.1:{port_of('torchserve', 'rest-json')}",
        "--csv",
        str(tmp_path / "run"),
        "TorchServeRestJson",
    )
    assert result.returncode != 0
    row = stats_row(tmp_path / "run", "torchserve")
    assert int(row["Failure Count"]) == int(row["Request Count"]) > 0


@pytest.mark.alone  # keeps a schedule: see above
def test_two_locust_processes_split_the_rate_and_achieve_the_total(port_of, small_features, tmp_path) -> None:
    rate = 300.0
    records_dir = tmp_path / "records"
    result = locust(
        tmp_path,
        *worker_processes(2),
        *users(4, spawn_rate=100, run_time="3s", rate=rate),
        "--features",
        str(small_features),
        "--host",
        f"127.0.0.1:{port_of('torchserve', 'grpc')}",
        "--records-dir",
        str(records_dir),
        "TorchServeGrpc",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    streams = run_streams(records_dir)
    assert len(streams) == 4  # one per user, over both worker processes
    per_user_rates = {read_header(path).settings["rate"] for path in streams}
    assert per_user_rates == {rate / 4}
    # each user's stream is Poisson at its share over the time it ran (when the processes started and
    # how long they overlapped depends on the machine's load: not what this test is about)
    for path in streams:
        problem = missing_arrivals([r.scheduled_ns for r in read_records(path)], rate / 4)
        assert problem is None, f"{path.name}: {problem}"
