"""`server_metrics.jsonl` (`inferload.server_metrics` v1): the file format the server monitor writes.

One JSON line per server per sampling interval: CPU and memory from one named source, and the
server's own Prometheus series. A header line (the schema, the interval, the servers watched) opens
each monitoring session; a resumed cell appends a second session after its own header. This module
owns the format: the typed lines (`MetricsHeader`, `ServerSample`), their writer (`header_line`,
`sample_line`) and the reader every other stage uses (`read_server_samples`). It imports nothing that
samples or scrapes (serving.monitor does), so analysis reads the file without the server code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field

from inferload_formats import Document, SchemaError, strict_fields, validate

METRICS_FILE = "server_metrics.jsonl"
SCHEMA: Final = "inferload.server_metrics"
SCHEMA_VERSION = 1
SOURCES = ("psutil", "cgroup", "docker-stats", "none")
REDO = "re-run the cell, or analyse it with the inferload that wrote it"

__all__ = [
    "METRICS_FILE",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SOURCES",
    "MetricsHeader",
    "MonitoredServer",
    "SchemaError",
    "ServerSample",
    "header",
    "header_line",
    "parse_series_key",
    "read_server_samples",
    "sample_line",
    "series_key",
]


@strict_fields
@dataclass(frozen=True)
class MonitoredServer:
    """One server to watch: where its metrics are and where its CPU/memory can be read."""

    name: str  # "tfserving" | "torchserve" (or "tfserving-1" for replicas)
    kind: str  # "tfs-compat" | "tensorflow_model_server" | "torchserve" | "pytriton" | "tritonserver"
    metrics_url: str | None  # Prometheus endpoint, None if the server exports none
    pid: int | None = None  # local process: psutil CPU/RSS of its process tree
    container: str | None = None  # compose: container id/name or "/cgroup/path": cgroup files, docker stats


class MetricsHeader(Document):
    """The line that opens a monitoring session: the sampling interval and the servers watched."""

    REDO = REDO

    schema_: Literal["inferload.server_metrics"] = Field(default=SCHEMA, alias="schema")
    schema_version: int = SCHEMA_VERSION
    interval_s: float
    servers: list[MonitoredServer]


@strict_fields
@dataclass(frozen=True)
class ServerSample:
    """One line of server_metrics.jsonl: one server at one instant.

    `metrics` maps Prometheus series keys (`name` or `name{label="value",...}`, labels sorted, host
    labels dropped) to values: counters, gauges and histogram `_sum`/`_count` (never buckets).
    """

    t_ns: int  # time.monotonic_ns() of the scrape: the same clock as the request records
    server: str
    kind: str
    source: str  # where cpu_* and rss_bytes came from: one of SOURCES
    cpu_percent: float | None  # 100 = one core, averaged since the previous sample
    cpu_seconds: float | None  # cumulative CPU time (user + system) of the process tree / container
    rss_bytes: int | None  # resident memory (cgroup/docker: usage less inactive page cache)
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_error: str | None = None  # why the scrape gave nothing, when it did

    def total(self, name: str, **labels: str) -> float | None:
        """Sum of the series of sample `name` whose labels include `labels`; None when there is none."""
        found = [
            value
            for key, value in self.metrics.items()
            if (parsed := parse_series_key(key))[0] == name
            and all(parsed[1].get(k) == v for k, v in labels.items())
        ]
        return sum(found) if found else None

    def label_values(self, name: str, label: str) -> set[str]:
        """The values `label` takes among the series of sample `name`."""
        values = set()
        for key in self.metrics:
            series, labels = parse_series_key(key)
            if series == name and label in labels:
                values.add(labels[label])
        return values


def header(servers: Sequence[MonitoredServer], interval_s: float) -> dict[str, Any]:
    """The header line's content for a session watching `servers` every `interval_s`."""
    return MetricsHeader(interval_s=interval_s, servers=list(servers)).to_dict()


def header_line(servers: Sequence[MonitoredServer], interval_s: float) -> str:
    return json.dumps(header(servers, interval_s)) + "\n"


def sample_line(sample: ServerSample) -> str:
    return json.dumps(asdict(sample)) + "\n"


def read_server_samples(path: Path | str) -> list[ServerSample]:
    """Every sample of a server_metrics.jsonl, in file order; [] when the file does not exist.

    A file may hold several monitoring sessions (a resumed cell appends), each after its header; files
    written before the header existed hold bare samples of the same fields and are read too. A torn
    last line (the writer was killed) is skipped. Another schema or version, or a line that is not a
    ServerSample after a header, raises `inferload_formats.SchemaError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        return []
    samples = []
    headed = False  # after a header, every line must be exactly a ServerSample
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line from an interrupted run
            if not isinstance(entry, dict):
                continue
            if "schema" in entry:
                MetricsHeader.from_document(entry, path)
                headed = True
                continue
            if headed:
                samples.append(validate(ServerSample, entry, f"{path}: line {number}", "ServerSample"))
            elif "server" in entry and "t_ns" in entry:
                samples.append(_headerless_sample(entry))
    return samples


def _headerless_sample(entry: dict[str, Any]) -> ServerSample:
    """A line of a file from before the header existed: psutil was then the only source."""
    def number(key: str) -> float | None:
        value = entry.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    rss = number("rss_bytes")
    metrics = entry.get("metrics") or {}
    return ServerSample(
        t_ns=int(entry["t_ns"]),
        server=str(entry["server"]),
        kind=str(entry.get("kind", "")),
        source=str(entry.get("source", "psutil")),
        cpu_percent=number("cpu_percent"),
        cpu_seconds=number("cpu_seconds"),
        rss_bytes=int(rss) if rss is not None else None,
        metrics={str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)},
        metrics_error=entry.get("metrics_error"),
    )


def series_key(name: str, labels: Mapping[str, str]) -> str:
    """`name{a="1",b="2"}` with labels sorted (just `name` without labels): one stable key per series."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


_KEY = re.compile(r"^([^{]+)(?:\{(.*)\})?$", re.S)
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """The inverse of `series_key`."""
    match = _KEY.match(key)
    if match is None:
        return key, {}
    name, inner = match.group(1), match.group(2) or ""
    return name, {label: _unescape(value) for label, value in _LABEL.findall(inner)}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
