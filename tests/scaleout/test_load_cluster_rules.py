"""The multi-host `inferload load`: addresses, joining, and what it refuses before any load."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

import loadtest._clock
from loadtest import LoadSettings
from loadtest._clock import wall_to_monotonic
from loadtest._cluster import (
    ClusterError,
    WorkerError,
    _accept,
    parse_address,
    run_load_cluster,
    serve_as_worker,
)


@pytest.mark.parametrize(
    ("text", "address"),
    [("10.0.0.5:5600", ("10.0.0.5", 5600)), ("[::1]:7000", ("::1", 7000)), ("gen-1:80", ("gen-1", 80))],
)
def test_addresses_are_host_and_port(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text, what="--listen") == address


@pytest.mark.parametrize("text", ["10.0.0.5", ":5600", "host:port", "host:0", "host:70000"])
def test_bad_addresses_name_the_flag(text: str) -> None:
    with pytest.raises(ValueError, match=r"--connect .*expected HOST:PORT"):
        parse_address(text, what="--connect")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_closed_loop_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = LoadSettings(server="tfserving", protocol="grpc", mode="closed", concurrency=4, duration_s=1)
    with pytest.raises(ClusterError, match="open loop only"):
        run_load_cluster(settings, tmp_path / "run", listen=f"127.0.0.1:{free_port()}", workers=1)
    assert not (tmp_path / "run").exists()


def test_missing_workers_are_reported_with_the_command_to_run() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ClusterError) as caught:
            _accept(server, 2, 0.5, address, b"x" * 32)
    assert time.monotonic() - started < 5
    assert "only 0 of 2 load worker(s) joined within 0.5 s" in str(caught.value)
    assert f"inferload load-worker --connect {address}" in str(caught.value)


@pytest.fixture(autouse=True)
def run_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLOAD_CLUSTER_SECRET", "a-test-secret-for-this-run-0123456789")


def test_a_worker_without_its_coordinator_stops_after_its_timeout(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(WorkerError, match=f"cannot reach the load coordinator at {address}"):
        serve_as_worker(address, tmp_path / "share", connect_timeout_s=0.5)


def test_a_worker_refuses_a_directory_with_old_records(tmp_path: Path) -> None:
    (tmp_path / "requests.0.jsonl").write_text("")
    with pytest.raises(WorkerError, match="empty --out directory"):
        serve_as_worker(f"127.0.0.1:{free_port()}", tmp_path, connect_timeout_s=0.5)


class PreemptedClocks:
    """This host's two clocks, wall = monotonic + OFFSET_NS, each read taking 100 ns; the process is
    preempted for 3 ms once, between the first pair of reads (as a busy machine does)."""

    OFFSET_NS = 1_700_000_000_000_000_000

    def __init__(self) -> None:
        self.now = 5_000_000_000
        self.reads = 0

    def _read(self) -> int:
        self.reads += 1
        self.now += 100 + (3_000_000 if self.reads == 2 else 0)
        return self.now

    def monotonic_ns(self) -> int:
        return self._read()

    def time_ns(self) -> int:
        return self._read() + self.OFFSET_NS


def test_a_wall_clock_start_maps_to_this_hosts_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts agree on wall time (NTP); each converts the common start to its own monotonic clock, from
    the tightest of its back-to-back reads, so a preemption between two reads does not shift it. (How
    close the real conversion comes is a benchmark: benchmarks/speed_targets.py.)"""
    clocks = PreemptedClocks()
    monkeypatch.setattr(loadtest._clock, "time", clocks)
    wall_start = 1_700_000_123_000_000_000
    assert wall_to_monotonic(wall_start) == wall_start - PreemptedClocks.OFFSET_NS
