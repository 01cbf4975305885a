"""`inferload load --workers 2` on the server host with `inferload load-worker` on two generator hosts
(network namespaces, real tfs-compat, small model): one run directory with every host's streams,
Poisson at the total rate; a worker host killed mid-run leaves its records and is named as lost; a
worker that cannot reach its coordinator says so quickly."""

from __future__ import annotations

import json
import os
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

from loadtest._cluster import START_MARGIN_S
from loadtest._schema import read_run

pytestmark = [
    pytest.mark.servers,
    pytest.mark.slow,
    pytest.mark.alone,  # start spread and arrival counts across hosts
    pytest.mark.needs("netns", "unshare"),
]

REPO = Path(__file__).resolve().parents[2]
INFERLOAD = [sys.executable, "-m", "inferload"]
COORDINATOR_PORT = 15600
TOTAL_RATE = 45.0  # three streams (one per host): 15/s each
DURATION_S = 6


def secret_file(where: Path) -> Path:
    """The run's shared secret, as the coordinator's host would make it and copy to the workers."""
    path = where / "run.secret"
    if not path.exists():
        path.write_text("a-test-secret-for-this-run-0123456789\n")
        path.chmod(0o600)
    return path


def coordinator(env: ServerHost, out: Path, log: Path) -> subprocess.Popen[bytes]:
    address = env.lab.server.address
    with open(log, "wb") as handle:
        return env.lab.server.popen(
            [*INFERLOAD, "load", "--server", "tfserving", "--protocol", "grpc", "--host", address,
             "--port", str(env.grpc_port), "--features", "1024", "--rate", str(TOTAL_RATE),
             "--duration", str(DURATION_S), "--warmup", "0.5", "--workers", "2",
             "--listen", f"{address}:{COORDINATOR_PORT}", "--join-timeout", "120", "--cpus", "all",
             "--secret-file", str(secret_file(log.parent)), "--out", str(out), "--quiet"],
            stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


def worker(host: LabHost, master: str, out: Path, log: Path,
           timeout_s: float = 60) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return host.popen(
            [*INFERLOAD, "load-worker", "--connect", f"{master}:{COORDINATOR_PORT}", "--out", str(out),
             "--connect-timeout", str(timeout_s), "--secret-file", str(secret_file(log.parent))],
            stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


def test_three_hosts_send_one_poisson_run_at_the_total_rate(three_hosts: ServerHost, tmp_path: Path) -> None:
    lab = three_hosts.lab
    run = tmp_path / "run"
    log_paths = [tmp_path / "coordinator.log", tmp_path / "gen1.log", tmp_path / "gen2.log"]
    main = coordinator(three_hosts, run, log_paths[0])
    workers = [worker(gen, lab.server.address, tmp_path / f"share{k}", log)
               for k, (gen, log) in enumerate(zip(lab.generators, log_paths[1:], strict=True))]
    finish([main, *workers])
    assert all(w.returncode == 0 for w in workers), logs(*log_paths)

    load = json.loads((run / "load.json").read_text())
    hosts = {lab.server.hostname, *(g.hostname for g in lab.generators)}
    assert set(load["hosts"]) == hosts, logs(*log_paths)
    assert all(entry["rate"] == pytest.approx(TOTAL_RATE / 3) for entry in load["hosts"].values())
    assert load["target_rate"] == pytest.approx(TOTAL_RATE) and load["processes"] == 3
    assert load["lost_workers"] == []
    assert len(load["generator_cpu_percent"]) == 3  # every host's load process reported

    data = read_run(run)
    window = data.records[data.records["in_window"]]
    starts = [h.measure_start_ns for h in data.headers]
    # one common start: every host converts the same wall-clock instant (a host starting on its own,
    # when the start message arrives or when it is ready, would be off by up to the start margin).
    # How close the hosts come is a benchmark (benchmarks/speed_targets.py), not this test.
    assert max(starts) - min(starts) < START_MARGIN_S * 1e9 / 10
    arrivals = np.sort(window["scheduled_ns"].to_numpy())
    expected = TOTAL_RATE * DURATION_S
    assert abs(len(arrivals) - expected) < 3 * np.sqrt(expected), (len(arrivals), expected)
    ks = stats.kstest(np.diff(arrivals) / 1e9, "expon", args=(0, 1 / TOTAL_RATE))
    assert ks.pvalue > 0.01, ks
    assert (window["status"] == "ok").mean() > 0.9


def test_a_worker_host_killed_mid_run_keeps_its_records_and_is_named_lost(
    three_hosts: ServerHost, tmp_path: Path
) -> None:
    lab = three_hosts.lab
    run = tmp_path / "run"
    log_paths = [tmp_path / "coordinator.log", tmp_path / "gen1.log", tmp_path / "gen2.log"]
    main = coordinator(three_hosts, run, log_paths[0])
    survivor = worker(lab.generators[0], lab.server.address, tmp_path / "share1", log_paths[1])
    victim = worker(lab.generators[1], lab.server.address, tmp_path / "share2", log_paths[2])
    try:
        deadline = time.monotonic() + 180
        while not list(run.glob("requests.*.jsonl")) or len(list(run.glob("requests.*.jsonl"))) < 3:
            assert time.monotonic() < deadline and main.poll() is None, logs(*log_paths)
            time.sleep(0.2)
        time.sleep(DURATION_S / 2)
        os.killpg(victim.pid, signal.SIGKILL)  # the whole worker host: load-worker and its load process
    finally:
        finish([main, survivor, victim])

    load = json.loads((run / "load.json").read_text())
    victim_host = lab.generators[1].hostname
    assert len(load["lost_workers"]) == 1, load["lost_workers"]
    assert load["lost_workers"][0].startswith(f"load worker on {victim_host} (streams ")  # joining order
    assert load["lost_workers"][0].endswith("its connection ended before it finished")
    assert not load["valid"]
    lost = [s for s in load["streams"] if s["host"] == victim_host]
    assert lost and sum(s["arrivals"] for s in lost) > 0
    records = read_run(run).records
    for stream in lost:  # its records up to the kill are all there: none lost before its last one
        scheduled = records[records["stream"] == stream["stream"]]["scheduled_ns"]
        problem = missing_arrivals(scheduled, TOTAL_RATE / 3)
        assert problem is None, f"stream {stream['stream']}: {problem}"
    assert load["hosts"][lab.generators[0].hostname]["sent"] > load["hosts"][victim_host]["sent"]


def test_a_worker_that_cannot_reach_its_coordinator_says_so(three_hosts: ServerHost, tmp_path: Path) -> None:
    gen = three_hosts.lab.generators[0]
    log = tmp_path / "worker.log"
    started = time.monotonic()
    lonely = worker(gen, three_hosts.lab.server.address, tmp_path / "share", log, timeout_s=2)
    finish([lonely], timeout_s=60)
    assert lonely.returncode == 2, logs(log)
    text = log.read_text()
    address = f"{three_hosts.lab.server.address}:{COORDINATOR_PORT}"
    assert f"cannot reach the load coordinator at {address}" in text
    assert "start `inferload load --workers N" in text
    assert time.monotonic() - started < 45


def test_a_worker_whose_coordinator_dies_stops_and_keeps_its_records(
    three_hosts: ServerHost, tmp_path: Path
) -> None:
    lab = three_hosts.lab
    run, share = tmp_path / "run", tmp_path / "share"
    log_paths = [tmp_path / "coordinator.log", tmp_path / "gen1.log", tmp_path / "gen2.log"]
    main = coordinator(three_hosts, run, log_paths[0])
    workers = [worker(lab.generators[0], lab.server.address, share, log_paths[1]),
               worker(lab.generators[1], lab.server.address, tmp_path / "share2", log_paths[2])]
    try:
        deadline = time.monotonic() + 180
        while len(list(run.glob("requests.*.jsonl"))) < 3:
            assert time.monotonic() < deadline and main.poll() is None, logs(*log_paths)
            time.sleep(0.2)
        time.sleep(1.0)
        main.kill()
        killed_at = time.monotonic()
        workers[0].wait(30)
        stopped_after = time.monotonic() - killed_at
    finally:
        finish([main, *workers])
    assert workers[0].returncode == 2, logs(*log_paths)
    assert stopped_after < DURATION_S  # it stopped, instead of sending its whole schedule to nobody
    text = log_paths[1].read_text()
    assert "went away mid-run" in text and str(share) in text
    assert sum(1 for _ in open(next(share.glob("requests.*.jsonl")))) > 1  # header + its records so far
