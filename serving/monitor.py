"""Sample each server's CPU and memory (whole process tree) and scrape its Prometheus metrics while load runs.

One background thread appends one JSON line per server per interval to server_metrics.jsonl, so the
analysis can put server-side cost next to the client-side latency of the same run.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil
from prometheus_client.parser import text_string_to_metric_families

from serving.ports import LOOPBACK
from serving.tfserving import PROMETHEUS_PATH

METRICS_FILE = "server_metrics.jsonl"
# Families from the Prometheus client's own process/runtime collectors: our psutil sample covers these.
_SKIPPED_PREFIXES = ("python_", "process_")


@dataclass(frozen=True)
class MonitoredServer:
    """One server to watch: where its metrics are and where its CPU/memory can be read."""

    name: str  # "tfserving" | "torchserve" (or "tfserving-1" for replicas later)
    kind: str  # "tfs-compat" | "tensorflow_model_server" | "torchserve"
    metrics_url: str | None  # Prometheus endpoint, None if the server exports none
    pid: int | None = None  # local process: psutil CPU/RSS of its process tree
    container: str | None = None  # compose: container id/name, sampled via cgroup files / docker stats


class ServerMonitor:
    """Context manager: `with ServerMonitor(stack.monitored(), run_dir): run_load(...)`.

    `out_path` is the JSON Lines file, or a directory to write `server_metrics.jsonl` into.
    """

    def __init__(
        self, servers: Sequence[MonitoredServer], out_path: Path | str, interval_s: float = 0.5
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        out = Path(out_path)
        self.out_path = out / METRICS_FILE if out.is_dir() else out
        self.interval_s = interval_s
        self._servers = tuple(servers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[tuple[str, int], psutil.Process] = {}
        self.samples_written = 0

    def __enter__(self) -> ServerMonitor:
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self._sample_once()  # primes cpu_percent, whose first reading is always 0
        self._thread = threading.Thread(target=self._run, name="server-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 * self.interval_s + 5)

    def _run(self) -> None:
        with open(self.out_path, "a", buffering=1) as out:
            while not self._stop.wait(self.interval_s):
                for line in self._sample_once():
                    out.write(json.dumps(line) + "\n")
                    self.samples_written += 1

    def _sample_once(self) -> list[dict[str, object]]:
        lines = []
        for server in self._servers:
            if server.pid is not None:
                source = "psutil"
                cpu, rss = self._tree_usage(server.name, server.pid)
            else:
                source, cpu, rss = "none", None, None
            lines.append(
                {
                    "t_ns": time.monotonic_ns(),
                    "server": server.name,
                    "kind": server.kind,
                    "source": source,
                    "cpu_percent": cpu,
                    "rss_bytes": rss,
                    "metrics": scrape(server.metrics_url) if server.metrics_url else {},
                }
            )
        return lines

    def _tree_usage(self, name: str, pid: int) -> tuple[float, int]:
        """CPU % (100 = one core) and RSS summed over the server and all its descendants."""
        try:
            root = psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0, 0
        cpu, rss = 0.0, 0
        for proc in members:
            cached = self._procs.setdefault((name, proc.pid), proc)
            try:
                cpu += cached.cpu_percent(interval=None)
                rss += cached.memory_info().rss
            except psutil.Error:
                self._procs.pop((name, proc.pid), None)
        return round(cpu, 1), rss


def metrics_url(server: str, ports: dict[str, int]) -> str:
    if server == "torchserve":
        return f"http://{LOOPBACK}:{ports['torchserve_metrics']}/metrics"
    return f"http://{LOOPBACK}:{ports['tfserving_rest']}{PROMETHEUS_PATH}"


def scrape(url: str, timeout_s: float = 0.4) -> dict[str, float]:
    """Prometheus samples summed over their labels (e.g. all TorchServe models): {} if it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return {}
    return parse_metrics(text)


def parse_metrics(text: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            if family.name.startswith(_SKIPPED_PREFIXES):
                continue
            for sample in family.samples:
                # Histogram buckets and summary quantiles make no sense summed; keep _sum and _count.
                if "le" in sample.labels or "quantile" in sample.labels:
                    continue
                if math.isfinite(sample.value):
                    totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    except ValueError:
        return totals
    return totals
