"""The files beside the request records, read through their owners' definitions (never parsed here).

| file | format | owner: definition, reader |
|---|---|---|
| `manifest.json` | `inferload.experiment` v2 | `inferload_formats`: `Manifest` |
| `cell.json` | `inferload.cell` v2 | `inferload_formats`: `CellRecord`, `read_cell` |
| `load.json` | `inferload.load` v2 | `loadtest`: `LoadSummary` |
| `payloads.json` | `inferload.payloads` v1 | `loadtest`: `EncodingRecord`, `read_payloads_json` |
| `floor.json` | `inferload.floor` v1 | `models.floor`: `FloorRecord`, `read_floor` |
| `calibration.jsonl` | `inferload.calibration` v1 | `models.calibration`: `CalibrationLog`, reader |
| `server_metrics.jsonl` | `inferload.server_metrics` v1 | `serving.metrics_file`: `ServerSample`, reader |

Each owner refuses another schema, an unknown or newer version (naming the file, the version it says
and the one read here) and a misspelt field with `inferload_formats.SchemaError`; this module turns
those refusals into `ResultsError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from analysis.errors import ResultsError
from inferload_formats import MANIFEST_FILE, CellRecord, Manifest, SchemaError, strict_fields
from inferload_formats import read_cell as _read_cell
from loadtest import EncodingRecord, LoadSummary, read_payloads_json
from loadtest._summary import LOAD_FILE
from models.calibration import CALIBRATION_FILE, CalibrationLog
from models.calibration import read_calibration as _read_calibration
from models.floor import FloorRecord
from models.floor import read_floor as _read_floor
from serving.metrics_file import METRICS_FILE, ServerSample, read_server_samples

PAYLOADS_FILE = "payloads.json"
FLOOR_FILE = "floor.json"
T = TypeVar("T")


def _owned(read: Callable[..., T], *args: Any) -> T:
    """Call an owner's reader; its refusal becomes the analysis' ResultsError, word for word."""
    try:
        return read(*args)
    except SchemaError as exc:
        raise ResultsError(str(exc)) from exc


def read_manifest(results_dir: Path) -> Manifest:
    return _owned(Manifest.read, results_dir / MANIFEST_FILE)


def read_cell(run_dir: Path) -> CellRecord | None:
    """The cell's cell.json, or None for a bare load run or an interrupted cell."""
    return _owned(_read_cell, run_dir)


def read_calibration(results_dir: Path) -> CalibrationLog | None:
    """The run's calibration.jsonl (the machine's speed between rounds), or None when it has none."""
    path = results_dir / CALIBRATION_FILE
    return _owned(_read_calibration, path) if path.is_file() else None


def read_load(run_dir: Path) -> LoadSummary | None:
    """The run's load.json (generator health and counts), or None when it has none."""
    path = run_dir / LOAD_FILE
    return _owned(LoadSummary.read, path) if path.is_file() else None


@dataclass(frozen=True)
class PayloadCost:
    """One body format's size and median encode time (per request body of `batch` instances): the
    report's view of one `EncodingRecord`."""

    server: str
    protocol: str
    batch: int
    body_bytes: int
    encode_ms: float

    @classmethod
    def of(cls, record: EncodingRecord) -> PayloadCost:
        return cls(record.server, record.protocol, record.batch, record.body_bytes, record.encode_ms_median)


def read_payloads(run_dir: Path) -> list[PayloadCost]:
    path = run_dir / PAYLOADS_FILE
    if not path.is_file():
        return []
    return [PayloadCost.of(record) for record in _owned(read_payloads_json, path)]


@dataclass(frozen=True)
class FloorTime:
    """In-process predict time of one framework at one batch size (the median of its timed calls):
    the report's view of one `FloorRecord`, the model-compute floor."""

    framework: str
    batch: int
    p50_ms: float

    @classmethod
    def of(cls, record: FloorRecord) -> FloorTime:
        return cls(record.framework, record.batch, record.median_ms)


def read_floor(results_dir: Path) -> list[FloorTime]:
    path = results_dir / FLOOR_FILE
    if not path.is_file():
        return []
    return [FloorTime.of(record) for record in _owned(_read_floor, path)]


def read_samples(run_dir: Path) -> list[ServerSample]:
    """The run's server_metrics.jsonl samples ([] without the file)."""
    return _owned(read_server_samples, run_dir / METRICS_FILE)


@strict_fields
@dataclass(frozen=True)
class ServerUsage:
    """CPU and memory of each server process while a run's load was on."""

    server: str
    cpu_percent_mean: float
    cpu_percent_max: float
    rss_bytes_max: int
    samples: int


def server_usage(
    samples: Sequence[ServerSample], start_ns: int | None = None, end_ns: int | None = None
) -> list[ServerUsage]:
    """Summarize a run's `server_metrics.jsonl` samples (`read_samples`; within `start_ns..end_ns` when
    given) per server; samples without a CPU percentage (an external server, source "none") are left out.
    """
    per_server: dict[str, list[tuple[float, int]]] = {}
    for sample in samples:
        if sample.cpu_percent is None:
            continue
        if start_ns is not None and end_ns is not None and not start_ns <= sample.t_ns <= end_ns:
            continue
        per_server.setdefault(sample.server, []).append((sample.cpu_percent, sample.rss_bytes or 0))
    usage = []
    for server, readings in sorted(per_server.items()):
        cpus = [c for c, _ in readings]
        usage.append(
            ServerUsage(
                server=server,
                cpu_percent_mean=sum(cpus) / len(cpus),
                cpu_percent_max=max(cpus),
                rss_bytes_max=max(r for _, r in readings),
                samples=len(readings),
            )
        )
    return usage
