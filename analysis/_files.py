"""Readers for the JSON files beside the request records: manifest, cell, load, payloads, floor, metrics.

The contract (docs/architecture.md) names these files and a few of their fields; where a field's
exact name is not fixed there, the readers accept the documented spellings listed in `_pick` calls
and ignore anything else. Files that carry `schema`/`schema_version` are version-checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from analysis._records import check_version
from analysis.errors import ResultsError
from analysis.server_side import read_samples

EXPERIMENT_SCHEMA = "inferload.experiment"
SUPPORTED_EXPERIMENT_VERSION = 1


def read_json(path: Path) -> Any:
    """Parse one JSON file, or raise `ResultsError` naming it."""
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ResultsError(f"{path}: file not found") from None
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc


def _check_if_versioned(path: Path, document: Any, supported: int = 1) -> None:
    """Side files may carry a version; when they do, it must be one we read."""
    if isinstance(document, dict) and "schema_version" in document:
        check_version(path, document, str(document.get("schema")), supported)


def _pick(mapping: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in mapping and mapping[name] is not None:
            return mapping[name]
    return default


def _first_ms(mapping: dict[str, Any], *names: str) -> float | None:
    """The first present duration among `names`, converted to ms by its unit suffix (_ms, _us, _ns, _s)."""
    scales = (("_ms", 1.0), ("_us", 1e-3), ("_ns", 1e-6), ("_s", 1e3))
    for name in names:
        value = mapping.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            unit = next(
                (scale for suffix, scale in scales if name.endswith(suffix) or f"{suffix}_" in name), 1.0
            )
            return float(value) * unit
    return None


def read_manifest(results_dir: Path) -> dict[str, Any]:
    path = results_dir / "manifest.json"
    manifest = read_json(path)
    check_version(path, manifest, EXPERIMENT_SCHEMA, SUPPORTED_EXPERIMENT_VERSION)
    return manifest


def read_cell(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "cell.json"
    if not path.is_file():
        return None
    cell = read_json(path)
    if not isinstance(cell, dict):
        raise ResultsError(f"{path}: expected a JSON object describing the cell")
    _check_if_versioned(path, cell)
    return cell


@dataclass(frozen=True)
class GeneratorHealth:
    """What `load.json` says about the load generator: did it keep the schedule?"""

    valid: bool | None
    invalid_reasons: tuple[str, ...]
    achieved_rate: float | None
    run_settings: dict[str, Any] = field(default_factory=dict)


def read_load(run_dir: Path) -> GeneratorHealth:
    path = run_dir / "load.json"
    if not path.is_file():
        return GeneratorHealth(None, ("no load.json: the generator's health is unknown",), None)
    load = read_json(path)
    _check_if_versioned(path, load)
    if not isinstance(load, dict) or "valid" not in load:
        return GeneratorHealth(None, (f"{path.name} has no 'valid' field",), None)
    reasons = tuple(str(r) for r in (load.get("invalid_reasons") or ()))
    achieved = _pick(load, "achieved_send_rate", "achieved_rate")
    run_settings = {
        "server": load.get("server"),
        "protocol": load.get("protocol"),
        "mode": load.get("mode"),
        "rate": load.get("target_rate"),
        "concurrency": load.get("concurrency"),
        "batch": load.get("batch"),
        "server_kind": load.get("server_kind"),
    }
    return GeneratorHealth(
        bool(load["valid"]), reasons, float(achieved) if achieved is not None else None, run_settings
    )


@dataclass(frozen=True)
class PayloadCost:
    """One body format's size and encode time (per request body of `batch` instances)."""

    server: str
    protocol: str
    batch: int
    body_bytes: int
    encode_ms: float | None


def _entries(document: Any, *keys: str) -> list[dict[str, Any]]:
    if isinstance(document, list):
        return [e for e in document if isinstance(e, dict)]
    if isinstance(document, dict):
        for key in keys:
            if isinstance(document.get(key), list):
                return [e for e in document[key] if isinstance(e, dict)]
    return []


def read_payloads(run_dir: Path) -> list[PayloadCost]:
    path = run_dir / "payloads.json"
    if not path.is_file():
        return []
    document = read_json(path)
    _check_if_versioned(path, document)
    costs = []
    for entry in _entries(document, "encodings", "payloads", "records"):
        costs.append(
            PayloadCost(
                server=str(entry.get("server")),
                protocol=str(entry.get("protocol")),
                batch=int(_pick(entry, "batch", "batch_size", default=1)),
                body_bytes=int(_pick(entry, "body_bytes", "bytes", default=0)),
                encode_ms=_first_ms(entry, "encode_ms_median", "encode_ms", "encode_ms_p50"),
            )
        )
    return costs


@dataclass(frozen=True)
class FloorTime:
    """In-process predict time of one framework at one batch size: the model-compute floor."""

    framework: str
    batch: int
    p50_ms: float


def read_floor(results_dir: Path) -> list[FloorTime]:
    path = results_dir / "floor.json"
    if not path.is_file():
        return []
    document = read_json(path)
    _check_if_versioned(path, document)
    floor = []
    for entry in _entries(document, "records", "floor", "results"):
        time_ms = _first_ms(
            entry, "p50_ms", "median_ms", "predict_ms_median", "predict_ms_p50", "predict_ms", "mean_ms"
        )
        if time_ms is None:
            time_ms = _first_ms(entry, "p50_s", "median_s", "p50_ns", "median_ns")
        if time_ms is None:
            continue
        floor.append(
            FloorTime(
                framework=str(entry.get("framework")),
                batch=int(_pick(entry, "batch", "batch_size", default=1)),
                p50_ms=time_ms,
            )
        )
    return floor


@dataclass(frozen=True)
class ServerUsage:
    """CPU and memory of each server process while a run's load was on."""

    server: str
    cpu_percent_mean: float
    cpu_percent_max: float
    rss_bytes_max: int
    samples: int


def read_server_usage(
    run_dir: Path, start_ns: int | None = None, end_ns: int | None = None
) -> list[ServerUsage]:
    """Summarize `server_metrics.jsonl` samples (within `start_ns..end_ns` when given) per server.

    Read through the file's owner, `serving.monitor.read_server_samples`; samples without a CPU
    percentage (an external server, source "none") are left out.
    """
    per_server: dict[str, list[tuple[float, int]]] = {}
    for sample in read_samples(run_dir):
        if sample.cpu_percent is None:
            continue
        if start_ns is not None and end_ns is not None and not start_ns <= sample.t_ns <= end_ns:
            continue
        per_server.setdefault(sample.server, []).append((sample.cpu_percent, sample.rss_bytes or 0))
    usage = []
    for server, samples in sorted(per_server.items()):
        cpus = [c for c, _ in samples]
        usage.append(
            ServerUsage(
                server=server,
                cpu_percent_mean=sum(cpus) / len(cpus),
                cpu_percent_max=max(cpus),
                rss_bytes_max=max(r for _, r in samples),
                samples=len(samples),
            )
        )
    return usage
