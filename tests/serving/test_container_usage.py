"""A container's CPU and memory are read from its cgroup files (v1 or v2), or from `docker stats` where
those cannot be read: tested on a real cgroup made for the test, and on docker stats' own output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from capabilities import need

from serving.monitor import CGROUP_ROOT, CgroupFiles, container_cgroup, parse_docker_stats

BURN = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
# allocates 64 MiB once it was moved into the group (v1 charges memory where it is allocated), then waits
HOLD = (
    "import sys\nsys.stdin.readline()\nx = b'1' * (64 * 1024 * 1024)\n"
    "print('held', flush=True)\nsys.stdin.read()\n"
)


@pytest.fixture
def test_cgroup() -> Iterator[str]:
    """A v1 cgroup (cpuacct + memory) of our own, removed afterwards."""
    need("cgroup-v1")
    group = f"inferload-test-{os.getpid()}"
    dirs = [CGROUP_ROOT / "cpuacct" / group, CGROUP_ROOT / "memory" / group]
    for directory in dirs:
        directory.mkdir()
    try:
        yield group
    finally:
        for directory in dirs:
            for pid in (directory / "cgroup.procs").read_text().split():  # leave nothing inside
                (directory.parent / "cgroup.procs").write_text(pid)
            directory.rmdir()


def _join(group: str, pid: int) -> None:
    for controller in ("cpuacct", "memory"):
        (CGROUP_ROOT / controller / group / "cgroup.procs").write_text(str(pid))


def test_cpu_seconds_and_memory_of_a_real_cgroup(test_cgroup: str) -> None:
    files = CgroupFiles.of_group(test_cgroup)
    assert files is not None and files.version == 1
    before = files.read()
    assert before.cpu_seconds == 0 and before.memory_bytes < 1024 * 1024

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        _join(test_cgroup, holder.pid)
        holder.stdin.write("go\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        assert holder.stdout.readline().strip() == "held"  # type: ignore[union-attr]
        burner = subprocess.Popen([sys.executable, "-c", BURN])
        _join(test_cgroup, burner.pid)
        burner.wait(timeout=60)
        during = files.read()
    finally:
        holder.communicate("", timeout=30)
    # the burner spent at least 0.6 s of CPU inside the group (its start-up before joining is not counted)
    assert 0.5 <= during.cpu_seconds - before.cpu_seconds < 30
    assert during.memory_bytes >= 64 * 1024 * 1024  # the holder's 64 MiB (allocated after it joined)


def test_a_group_that_does_not_exist_has_no_files(tmp_path: Path) -> None:
    assert CgroupFiles.of_group("inferload-no-such-group") is None
    assert container_cgroup("0" * 64, root=tmp_path) is None


def test_v2_files_are_found_for_a_docker_container(tmp_path: Path) -> None:
    """The v2 layout under the systemd driver, as on current Docker hosts (files written by the test)."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    group = tmp_path / "system.slice" / "docker-abc.scope"
    group.mkdir(parents=True)
    (group / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (group / "memory.current").write_text("3000000\n")
    (group / "memory.stat").write_text("anon 2000000\ninactive_file 1000000\n")
    files = container_cgroup("abc", root=tmp_path)
    assert files is not None and files.version == 2
    usage = files.read()
    assert (usage.cpu_seconds, usage.memory_bytes) == (2.5, 2_000_000)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"CPUPerc":"12.34%","MemUsage":"100MiB / 2GiB"}', (12.34, 100 * 1024**2)),
        ('{"CPUPerc":"0.00%","MemUsage":"1.5GiB / 4GiB"}', (0.0, int(1.5 * 1024**3))),
        ('{"CPUPerc":"250.1%","MemUsage":"900kB / 1GB"}', (250.1, 900_000)),
    ],
)
def test_docker_stats_lines_are_read(line: str, expected: tuple[float, int]) -> None:
    assert parse_docker_stats(line) == expected


def test_unreadable_docker_stats_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="unreadable docker stats memory"):
        parse_docker_stats('{"CPUPerc":"1%","MemUsage":"-- / --"}')


def test_the_monitor_samples_a_container_from_its_cgroup(test_cgroup: str, tmp_path: Path) -> None:
    """A container given by its cgroup path: every line says `cgroup`, with CPU-seconds and percent."""
    from serving.metrics_file import MonitoredServer, read_server_samples
    from serving.monitor import ServerMonitor

    server = MonitoredServer("torchserve", "torchserve", None, container=f"/{test_cgroup}")
    burner = subprocess.Popen([sys.executable, "-c", BURN.replace("0.6", "1.5")])
    try:
        _join(test_cgroup, burner.pid)
        with ServerMonitor([server], tmp_path, interval_s=0.2):
            burner.wait(timeout=60)
    finally:
        burner.kill()
    samples = read_server_samples(tmp_path / "server_metrics.jsonl")
    assert len(samples) >= 2 and all(s.source == "cgroup" for s in samples)
    cpu = [s.cpu_seconds for s in samples]
    assert all(c is not None for c in cpu)
    assert cpu[-1] - cpu[0] > 0.3  # type: ignore[operator]
    assert max(s.cpu_percent or 0.0 for s in samples) > 10
