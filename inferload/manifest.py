"""`manifest.json` and `cell.json`: what ran, on what, with which versions, so any result can be re-read.

This module owns both formats (docs/results-format.md): their typed definitions (`Manifest`,
`CellRecord`), versions, writers and readers; the runner writes and analysis reads through them.
Files are written to a temporary name and renamed, so an interrupted write never leaves a half file
that resume misreads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferload.experiments import Experiment
from loadtest._schema import SchemaError, check_format, field_problems, read_json_document

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "CELL_FILE",
    "CELL_SCHEMA",
    "CELL_VERSION",
    "CELL_DONE",
    "CELL_FAILED",
    "CellCalibration",
    "CellMachine",
    "CellProbe",
    "CellRecord",
    "Manifest",
    "RoundRecord",
    "Schedule",
    "WarmupRecord",
    "SchemaError",
    "build_manifest",
    "cell_status",
    "machine_info",
    "package_versions",
    "read_cell",
    "read_manifest",
    "write_cell",
    "write_json",
    "write_manifest",
    "now_iso",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA: Literal["inferload.experiment"] = "inferload.experiment"
MANIFEST_VERSION = 2  # 2 added the schedule, its rounds and the server warm-ups
MANIFEST_READABLE = (1, 2)
CELL_FILE = "cell.json"
CELL_SCHEMA: Literal["inferload.cell"] = "inferload.cell"
CELL_VERSION = 2  # 2 added round, position, arm and the machine during the cell
CELL_READABLE = (1, 2)
CELL_DONE = "done"
CELL_FAILED = "failed"


class _Document(BaseModel):
    """A results document: frozen, and every field named exactly (a misspelt one is refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ManifestSlo(_Document):
    percentile: float
    latency_ms: float


class ManifestModel(_Document):
    classes: int
    features: int
    seed: int


class Schedule(_Document):
    """How the cells were ordered (inferload/rounds.py): rounds that visit every line in a seeded random
    order, and what separated two repetitions."""

    seed: int  # the rounds' orders are drawn from this seed and the round's index
    isolation: Literal["restart", "rewarm"]  # between repetitions: servers restarted, or warmed again
    arms: int = 1  # 2 when some lines were measured twice per round (an A/A check: arms a and b)


class RoundRecord(_Document):
    """One round: every line of one server config visited once, in `order` (line ids, position 0 first).

    A rate sweep's round runs every line at one `level`; a max-rate search's round advances every line
    still searching by one step (`level` None: each line's step is in its cell.json).
    """

    round: int
    repetition: int
    server_config_name: str
    kind: Literal["levels", "search"]
    level: float | None
    order: list[str]
    calibration_before: int | None = None  # index of the calibration point taken before the round
    calibration_after: int | None = None


class WarmupRecord(_Document):
    """A line warmed after its server started (inferload/warmup.py): closed-loop windows until the last
    `windows` window medians agree within `within` of their mean, or `max_s` ran out."""

    line: str
    server: str
    protocol: str
    batch: int
    server_config_name: str
    repetition: int
    started_at: str
    rule: str  # the stability rule in words
    windows_ms: list[float]  # each window's median service time, in order
    window_requests: list[int]
    seconds: float  # wall time of the warm-up
    stable: bool  # False: the cap ended it first
    error: str | None = None  # the warm-up load failed (the line's cells still run and say how they did)


class Manifest(_Document):
    """manifest.json (`inferload.experiment` v2; v1 is read too): the matrix, where and on what it ran,
    and (v2) the order it ran in."""

    schema_: Literal["inferload.experiment"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    schema_version: int = MANIFEST_VERSION
    name: str
    experiment: dict[str, Any]  # the resolved matrix (inferload.experiments.Experiment, as JSON)
    slo: ManifestSlo
    model: ManifestModel
    seeds: dict[str, int]
    tfserving_kind: str | None  # the kind that ran; "auto" until the first TF Serving start says
    versions: dict[str, str]
    machine: dict[str, Any]
    artifacts: str
    skipped_cells: list[dict[str, str]] = Field(default_factory=list)  # {"cell_id", "reason"}
    created_at: str
    resumed_at: str | None = None
    cpus: dict[str, Any] | None = None  # serving.cpusets plan: {"servers", "load", "source", "available"}
    target: dict[str, Any] | None = None  # inferload.targets: where the servers were
    schedule: Schedule | None = None  # v2: how the rounds were drawn (None: a v1 manifest)
    rounds: list[RoundRecord] = Field(default_factory=list)  # v2: the rounds run so far, in order
    warmups: list[WarmupRecord] = Field(default_factory=list)  # v2: every warm-up after a server start


class CellCalibration(_Document):
    """The calibration point nearest in time to the cell (models/calibration.py), at the cell's batch."""

    index: int  # the point's index in calibration.jsonl
    label: str
    seconds_away: float  # from the middle of the cell's load to the calibration
    batch: int  # the calibrated batch nearest the cell's
    predict_ms: float  # median in-process predict time there
    bandwidth_gb_s: float | None


class CellProbe(_Document):
    """The low-duty probe's predict calls while the cell's load ran (models/calibration.py)."""

    batch: int
    median_ms: float
    p90_ms: float
    n: int


class CellMachine(_Document):
    """The machine while the cell's load ran: its speed (nearest calibration, the probe in the cell's
    own window) and what else took CPU (inferload/machine.py). The servers' own per-request compute
    time for the same window is in the cell's server_metrics.jsonl (analysis.server_side reads it)."""

    window_ns: tuple[int, int]  # monotonic start and end of the cell's load (the records' clock)
    cpu_count: int  # CPUs the shares below are of
    steal_share: float | None  # share of all CPU time the hypervisor gave to other guests (/proc/stat)
    load_average_1m: float | None  # the 1-minute load average, mean over the cell's samples
    other_cpu_cores: float | None  # CPU of processes that are neither the servers nor ours, in cores
    calibration: CellCalibration | None = None
    probe: CellProbe | None = None


class CellRecord(_Document):
    """cell.json (`inferload.cell` v2; v1 is read too): one cell repetition's settings and how it ended.

    The matrix's bookkeeping of a cell (id, server config, repetition, status); what the load
    generator measured is in the run's own files (records, load.json).
    """

    schema_: Literal["inferload.cell"] = Field(default=CELL_SCHEMA, alias="schema")
    schema_version: int = CELL_VERSION
    cell_id: str
    server: str
    protocol: str
    mode: Literal["open", "closed"]
    rate: float | None
    concurrency: int | None
    batch: int
    server_config: dict[str, Any]
    server_config_name: str
    repetition: int
    body_bytes_estimate: int | None = None
    repeat_share: float | None = None
    duration_s: float | None = None  # a search step's own duration (None: the matrix's)
    status: Literal["done", "failed"]
    error: str | None
    tfserving_kind: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    load_summary: dict[str, Any] | None = None  # a few load.json fields (load.json has them all)
    target: dict[str, Any] | None = None  # {"kind", "host", "port", "metadata_url"}
    round: int | None = None  # v2: the round it ran in (manifest.json `rounds`)
    position: int | None = None  # v2: its place in that round's order, from 0
    arm: Literal["a", "b"] | None = None  # v2: an A/A line's arm (None: the line has no twin)
    machine: CellMachine | None = None  # v2: the machine while its load ran (None: not measured)

_PACKAGES = (
    "inferload", "tensorflow-cpu", "tensorflow", "tensorflow-serving-api", "torch", "torchserve",
    "torch-model-archiver", "locust", "gevent", "geventhttpclient", "grpcio", "protobuf", "numpy",
    "orjson", "pydantic", "pandas",
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers (servers, runtimes, generator)."""
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["java"] = _java_version()
    return versions


def _java_version() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    first = (done.stderr or done.stdout).strip().splitlines()
    return first[0] if first else "unknown"


def machine_info() -> dict[str, Any]:
    """The machine the numbers came from: a 2-core box and a 64-core box give different verdicts."""
    memory = psutil.virtual_memory()
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count_logical": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
        "cpu_model": _cpu_model(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_manifest(experiment: Experiment, *, tfserving_kind: str, skipped: list[dict[str, str]],
                   artifacts: Path) -> dict[str, Any]:
    """The manifest of docs/architecture.md, plus the skipped cells and the artifacts used."""
    return {
        "schema": MANIFEST_SCHEMA,
        "schema_version": MANIFEST_VERSION,
        "name": experiment.name,
        "experiment": experiment.model_dump(mode="json"),
        "slo": experiment.slo.model_dump(mode="json"),
        "model": experiment.model.model_dump(mode="json"),
        "seeds": {"experiment": experiment.seed, "model": experiment.model.seed},
        "tfserving_kind": tfserving_kind,
        "versions": package_versions(),
        "machine": machine_info(),
        "artifacts": str(artifacts),
        "skipped_cells": skipped,
        "created_at": now_iso(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a reader (or a resumed run) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _read(path: Path, schema: str, readable: tuple[int, ...], model: type[_Document]) -> Any:
    document = read_json_document(path)
    check_format(path, document, schema, readable)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise field_problems(path, schema, exc) from exc


def write_manifest(path: Path, manifest: dict[str, Any] | Manifest) -> Manifest:
    """Check `manifest` against the format, then write it atomically; returns the typed manifest."""
    typed = manifest if isinstance(manifest, Manifest) else Manifest.model_validate(manifest)
    write_json(path, typed.to_dict())
    return typed


def read_manifest(path: Path) -> Manifest:
    """manifest.json (`path` is the file or its results directory); SchemaError names the file and,
    for another version, the version it says and the one read here."""
    path = path / MANIFEST_FILE if path.is_dir() else path
    result: Manifest = _read(path, MANIFEST_SCHEMA, MANIFEST_READABLE, Manifest)
    return result


def write_cell(cell_dir: Path, record: dict[str, Any] | CellRecord) -> CellRecord:
    """Check `record` against the format, then write `cell_dir/cell.json` atomically."""
    typed = record if isinstance(record, CellRecord) else CellRecord.model_validate(record)
    write_json(cell_dir / CELL_FILE, typed.to_dict())
    return typed


def read_cell(cell_dir: Path) -> CellRecord | None:
    """`cell_dir/cell.json`, or None when the cell has none (interrupted); SchemaError when it is not
    `inferload.cell` of the version read here, or has a bad field."""
    path = cell_dir / CELL_FILE
    if not path.is_file():
        return None
    result: CellRecord = _read(path, CELL_SCHEMA, CELL_READABLE, CellRecord)
    return result


def cell_status(cell_dir: Path) -> tuple[str | None, str | None]:
    """(status, error) of a cell for resume: (None, why) when it has no readable cell.json, so that
    an interrupted cell, or one written in another format, is run again."""
    try:
        record = read_cell(cell_dir)
    except SchemaError as exc:
        return None, str(exc)
    if record is None:
        return None, None
    return record.status, record.error
