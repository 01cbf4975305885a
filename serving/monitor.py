"""Watch each server while load runs: its CPU and memory, and its own Prometheus metrics.

One background thread appends one JSON line per server per interval to server_metrics.jsonl, so the
analysis can put the server's own view (queue and inference time, requests it counted, CPU-seconds)
next to the client-side latency of the same run. The file's format (typed lines, writer, reader) is
`serving.metrics_file`'s; scraping and parsing the servers' Prometheus text is `serving.prometheus`'s.
This module samples.

CPU and memory come from one source per server, named in every line:
- `psutil`: a local process, summed over its whole process tree;
- `cgroup`: a container, from its cgroup files (v1 `cpuacct.usage` + `memory.usage_in_bytes`, or v2
  `cpu.stat` + `memory.current`), memory less inactive page cache as `docker stats` counts it;
- `docker-stats`: `docker stats --no-stream` when the cgroup files cannot be read (percent only);
- `none`: an external server: its metrics are all we see.
CPU is recorded as cumulative CPU-seconds as well as percent, so a window's CPU cost is an exact delta.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import psutil

from serving.metrics_file import METRICS_FILE, MonitoredServer, ServerSample, header_line, sample_line
from serving.prometheus import scrape_series

CGROUP_ROOT = Path("/sys/fs/cgroup")


# ---------------------------------------------------------------- CPU and memory sources


@dataclass(frozen=True)
class CgroupUsage:
    cpu_seconds: float
    memory_bytes: int


@dataclass(frozen=True)
class CgroupFiles:
    """Where one cgroup's CPU and memory counters are: v1 has a directory per controller, v2 one."""

    version: int
    cpu_dir: Path
    memory_dir: Path

    @classmethod
    def of_group(cls, group: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
        """The files of cgroup `group` (a path relative to the hierarchy root), None if not readable."""
        group = group.strip("/")
        if (root / "cgroup.controllers").exists():  # v2: one unified hierarchy
            candidate = root / group
            return cls(2, candidate, candidate) if (candidate / "cpu.stat").is_file() else None
        cpu = next(
            (
                root / controller / group
                for controller in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
                if (root / controller / group / "cpuacct.usage").is_file()
            ),
            None,
        )
        memory = root / "memory" / group
        if cpu is None or not (memory / "memory.usage_in_bytes").is_file():
            return None
        return cls(1, cpu, memory)

    def read(self) -> CgroupUsage:
        """Cumulative CPU-seconds and memory in use less inactive page cache (as `docker stats`)."""
        if self.version == 1:
            cpu_s = int((self.cpu_dir / "cpuacct.usage").read_text()) / 1e9
            usage = int((self.memory_dir / "memory.usage_in_bytes").read_text())
            inactive = _stat(self.memory_dir / "memory.stat").get("total_inactive_file", 0)
        else:
            cpu_s = _stat(self.cpu_dir / "cpu.stat")["usage_usec"] / 1e6
            usage = int((self.memory_dir / "memory.current").read_text())
            inactive = _stat(self.memory_dir / "memory.stat").get("inactive_file", 0)
        return CgroupUsage(cpu_s, max(0, usage - inactive))


def _stat(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].lstrip("-").isdigit()}


def container_cgroup(container_id: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
    """A container's cgroup (Docker's cgroupfs or systemd driver, Podman), v1 or v2; None if absent.

    An id starting with "/" is taken as the cgroup's own path in the hierarchy.
    """
    if container_id.startswith("/"):
        return CgroupFiles.of_group(container_id, root)
    candidates = (
        f"docker/{container_id}",
        f"system.slice/docker-{container_id}.scope",
        f"machine.slice/libpod-{container_id}.scope",
    )
    for group in candidates:
        files = CgroupFiles.of_group(group, root)
        if files is not None:
            return files
    return None


def resolve_container_id(container: str) -> str:
    """The full id of a container given by name or id (`docker inspect`); the input when Docker is absent."""
    docker = shutil.which("docker")
    if docker is None:
        return container
    try:
        done = subprocess.run(
            [docker, "inspect", "--format", "{{.Id}}", container],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return container
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else container


_SIZE_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 1024, "MIB": 1024**2,
               "GIB": 1024**3, "TIB": 1024**4}


def parse_docker_stats(line: str) -> tuple[float, int]:
    """(CPU %, memory bytes) from one `docker stats --format '{{json .}}'` line."""
    entry = json.loads(line)
    cpu = float(str(entry["CPUPerc"]).rstrip("%"))
    used = str(entry["MemUsage"]).split("/")[0].strip()
    match = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]+)", used)
    if match is None or match.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"unreadable docker stats memory {used!r}")
    return cpu, int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def docker_stats(container: str, timeout_s: float = 5.0) -> tuple[float, int] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        done = subprocess.run(
            [docker, "stats", "--no-stream", "--format", "{{json .}}", container],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return parse_docker_stats(done.stdout.strip().splitlines()[0]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError):
        return None


class _ProcessTree:
    """psutil view of one local server and all its descendants (TorchServe's Python workers)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._procs: dict[int, psutil.Process] = {}

    def usage(self) -> tuple[float | None, float | None, int | None]:
        """(CPU % since the last call, cumulative CPU-seconds of the live tree, RSS bytes); None when gone."""
        try:
            root = psutil.Process(self.pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None, None, None
        cpu, cpu_s, rss = 0.0, 0.0, 0
        for proc in members:
            cached = self._procs.setdefault(proc.pid, proc)
            try:
                with cached.oneshot():
                    cpu += cached.cpu_percent(interval=None)
                    times = cached.cpu_times()
                    cpu_s += times.user + times.system
                    rss += cached.memory_info().rss
            except psutil.Error:
                self._procs.pop(proc.pid, None)
        return round(cpu, 1), round(cpu_s, 3), rss


class _Container:
    """A container's CPU/memory: its cgroup files when readable here, else `docker stats`."""

    def __init__(self, container: str) -> None:
        self.container = container
        resolved = container if container.startswith("/") else resolve_container_id(container)
        self.files = container_cgroup(resolved)
        self._last: tuple[int, float] | None = None

    @property
    def source(self) -> str:
        return "cgroup" if self.files is not None else "docker-stats"

    def usage(self) -> tuple[float | None, float | None, int | None]:
        if self.files is None:
            stats = docker_stats(self.container)
            return (stats[0], None, stats[1]) if stats else (None, None, None)
        try:
            now = self.files.read()
        except (OSError, ValueError, KeyError):
            return None, None, None
        t = time.monotonic_ns()
        percent = None
        if self._last is not None and t > self._last[0]:
            percent = round(100 * (now.cpu_seconds - self._last[1]) / ((t - self._last[0]) / 1e9), 1)
        self._last = (t, now.cpu_seconds)
        return percent, round(now.cpu_seconds, 3), now.memory_bytes


class _Watched:
    """One server and its CPU/memory source."""

    def __init__(self, server: MonitoredServer) -> None:
        self.server = server
        self.tree = _ProcessTree(server.pid) if server.pid is not None else None
        self.container = _Container(server.container) if server.pid is None and server.container else None

    @property
    def source(self) -> str:
        if self.tree is not None:
            return "psutil"
        return self.container.source if self.container is not None else "none"

    def sample(self) -> ServerSample:
        t_ns = time.monotonic_ns()
        metrics, error = scrape_series(self.server.metrics_url) if self.server.metrics_url else ({}, None)
        usage: tuple[float | None, float | None, int | None] = (None, None, None)
        if self.tree is not None:
            usage = self.tree.usage()
        elif self.container is not None:
            usage = self.container.usage()
        return ServerSample(t_ns=t_ns, server=self.server.name, kind=self.server.kind, source=self.source,
                            cpu_percent=usage[0], cpu_seconds=usage[1], rss_bytes=usage[2], metrics=metrics,
                            metrics_error=error)


class ServerMonitor:
    """Context manager: `with ServerMonitor(stack.monitored(), run_dir): run_load(...)`.

    `out_path` is the JSON Lines file, or a directory (existing, or a path without a suffix) to write
    `server_metrics.jsonl` into. A header
    line opens each session; one more sample is taken on exit, so the load's end is always bracketed.
    """

    def __init__(
        self, servers: Sequence[MonitoredServer], out_path: Path | str, interval_s: float = 0.5
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        out = Path(out_path)
        self.out_path = out / METRICS_FILE if out.is_dir() or not out.suffix else out
        self.interval_s = interval_s
        self.servers = tuple(servers)
        self._watched: list[_Watched] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_written = 0
        self.write_error: OSError | None = None  # the samples file could not be written (a full disk)

    def __enter__(self) -> ServerMonitor:
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self._watched = [_Watched(server) for server in self.servers]
        with open(self.out_path, "a") as out:
            out.write(header_line(self.servers, self.interval_s))
            for sample in self._sample_once():  # a baseline before any load
                # psutil's first reading is always 0: no percent yet
                out.write(sample_line(replace(sample, cpu_percent=None)))
                self.samples_written += 1
        self._thread = threading.Thread(target=self._run, name="server-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 * self.interval_s + 15)
        if self.write_error is not None and exc is None:
            # raised here, on the caller's thread, where a results-disk failure is told as one clear
            # error (inferload/results_disk.py), not as a traceback from the sampling thread
            raise self.write_error

    def _run(self) -> None:
        try:
            with open(self.out_path, "a", buffering=1) as out:
                while True:
                    stopping = self._stop.wait(self.interval_s)
                    for sample in self._sample_once():
                        out.write(sample_line(sample))
                        self.samples_written += 1
                    if stopping:
                        return
        except OSError as error:  # the disk is full or failing: stop sampling, tell the caller on exit
            self.write_error = error

    def _sample_once(self) -> list[ServerSample]:
        return [watched.sample() for watched in self._watched]
