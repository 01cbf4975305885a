"""Locust master/worker across three hosts (network namespaces, real servers, real Locust).

The server host runs both servers (small model) and the Locust master; two generator hosts run one
Locust worker each. The workers split the total rate; each writes its own record streams; the
streams merge into one run whose arrivals are Poisson at the total rate and whose load.json says
which host sent what. A worker killed mid-run keeps its records up to then, and the merged run says
it lost a worker. A worker that cannot reach its master stops quickly with a clear error.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from arrival_counts import missing_arrivals
from lab_network import LabHost, ServerHost, finish, logs
from scipy import stats

from loadtest._merge import merge_runs
from loadtest._schema import read_run

pytestmark = [
    pytest.mark.servers,
    pytest.mark.slow,
    pytest.mark.alone,  # arrival counts across hosts
    pytest.mark.needs("netns", "unshare"),
]

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = str(REPO / "loadtest" / "locustfile.py")
LOCUST = str(Path(sys.executable).with_name("locust"))
MASTER_PORT = 15557  # inside the server host's own namespace: nothing else listens there
TOTAL_RATE = 40.0
USERS = 4  # two per worker: 10/s each
RUN_S = 8


def start_worker(host: LabHost, master: str, log: Path, timeout_s: float = 60) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return host.popen([LOCUST, "-f", LOCUSTFILE, "--worker", "--master-host", master,
                           "--master-port", str(MASTER_PORT), "--master-timeout", str(timeout_s)],
                          stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def start_master(env: ServerHost, records: Path, log: Path) -> subprocess.Popen[bytes]:
    address = env.lab.server.address
    with open(log, "wb") as out:
        return env.lab.server.popen(
            [LOCUST, "-f", LOCUSTFILE, "--master", "--master-bind-host", address,
             "--master-bind-port", str(MASTER_PORT), "--headless", "-u", str(USERS), "-r", "100",
             "-t", f"{RUN_S}s", "--expect-workers", "2", "--expect-workers-max-wait", "120",
             "--rate", str(TOTAL_RATE), "--features", "1024", "--records-dir", str(records),
             "--host", f"grpc://{address}:{env.grpc_port}", "--only-summary", "TFServingGrpc"],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def test_workers_on_two_hosts_split_the_rate_into_one_poisson_run(
    three_hosts: ServerHost, tmp_path: Path
) -> None:
    records, run = tmp_path / "records", tmp_path / "run"
    gen1, gen2 = three_hosts.lab.generators
    master_log = tmp_path / "master.log"
    worker_logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [start_worker(gen, three_hosts.lab.server.address, log)
               for gen, log in zip((gen1, gen2), worker_logs, strict=True)]
    master = start_master(three_hosts, records, master_log)
    finish([master, *workers], timeout_s=180)

    assert list(records.glob("requests.*.jsonl")), logs(master_log, *worker_logs)
    summary = merge_runs([records], run)

    assert set(summary.hosts) == {gen1.hostname, gen2.hostname}, logs(master_log, *worker_logs)
    for host in summary.hosts.values():
        assert len(host["streams"]) == USERS // 2
        assert host["rate"] == pytest.approx(TOTAL_RATE / 2)
        assert host["ok"] > 0
    assert summary.target_rate == pytest.approx(TOTAL_RATE)
    assert summary.lost_workers == []
    assert (run / "load.json").exists()

    data = read_run(run)
    per_stream = data.records.groupby("stream")["scheduled_ns"]
    start = max(h.measure_start_ns for h in data.headers)  # every user is running from here...
    end = int(per_stream.max().min())  # ...to the last arrival of the stream that stopped first
    arrivals = np.sort(data.records["scheduled_ns"].to_numpy())
    arrivals = arrivals[(arrivals >= start) & (arrivals <= end)]
    window_s = (end - start) / 1e9
    expected = TOTAL_RATE * window_s
    assert window_s > RUN_S / 2
    assert abs(len(arrivals) - expected) < 3 * np.sqrt(expected), (len(arrivals), expected)
    ks = stats.kstest(np.diff(arrivals) / 1e9, "expon", args=(0, 1 / TOTAL_RATE))
    assert ks.pvalue > 0.01, ks


def test_a_killed_worker_keeps_its_records_and_the_run_says_it_was_lost(
    three_hosts: ServerHost, tmp_path: Path
) -> None:
    records, run = tmp_path / "records", tmp_path / "run"
    gen1, gen2 = three_hosts.lab.generators
    master_log = tmp_path / "master.log"
    worker_logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    survivor = start_worker(gen1, three_hosts.lab.server.address, worker_logs[0])
    victim = start_worker(gen2, three_hosts.lab.server.address, worker_logs[1])
    master = start_master(three_hosts, records, master_log)
    try:
        deadline = time.monotonic() + 120
        while not (records.exists() and len(list(records.glob("requests.*.jsonl"))) >= USERS):
            assert time.monotonic() < deadline, logs(master_log, *worker_logs)
            assert master.poll() is None, logs(master_log, *worker_logs)
            time.sleep(0.2)
        time.sleep(RUN_S / 3)
        victim.send_signal(signal.SIGKILL)  # the worker process itself (ip netns exec, unshare, sh exec it)
    finally:
        finish([master, survivor, victim], timeout_s=180)

    summary = merge_runs([records], run)
    assert set(summary.hosts) == {gen1.hostname, gen2.hostname}
    assert len(summary.lost_workers) == 1, summary.lost_workers
    assert summary.lost_workers[0].startswith(f"host {gen2.hostname} pid ")
    assert not summary.valid
    assert any("lost 1 load worker" in reason for reason in summary.invalid_reasons)

    lost = [s for s in summary.streams if s.host == gen2.hostname]
    kept = [s for s in summary.streams if s.host == gen1.hostname]
    assert all(s.lost for s in lost) and not any(s.lost for s in kept)
    # the killed worker's records up to the kill are in the merged run, none lost before its last one
    assert sum(s.arrivals for s in lost) > 0
    records = read_run(run).records
    for stream in lost:
        scheduled = records[records["stream"] == stream.stream]["scheduled_ns"]
        problem = missing_arrivals(scheduled, TOTAL_RATE / USERS)
        assert problem is None, f"stream {stream.stream}: {problem}"
    assert max(s.last_scheduled_s or 0 for s in lost) < min(s.last_scheduled_s or 0 for s in kept) - 1.0


def test_a_worker_that_cannot_reach_its_master_stops_with_a_clear_error(
    three_hosts: ServerHost, tmp_path: Path
) -> None:
    gen1 = three_hosts.lab.generators[0]
    log = tmp_path / "worker.log"
    started = time.monotonic()
    worker = start_worker(gen1, three_hosts.lab.server.address, log, timeout_s=2)
    finish([worker], timeout_s=60)
    assert worker.returncode == 2, logs(log)
    message = log.read_text()
    assert f"cannot reach its master at {three_hosts.lab.server.address}:{MASTER_PORT}" in message
    assert "start the master first" in message
    assert time.monotonic() - started < 45
