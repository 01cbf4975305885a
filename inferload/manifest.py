"""`manifest.json` and `cell.json`: what ran, on what, with which versions, so any result can be re-read.

The formats are docs/architecture.md's "Experiment results" (version 1). Files are written to a
temporary name and renamed, so an interrupted write never leaves a half file that resume misreads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from inferload.experiments import Experiment

__all__ = [
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "CELL_DONE",
    "CELL_FAILED",
    "build_manifest",
    "machine_info",
    "package_versions",
    "read_json",
    "write_json",
    "now_iso",
]

MANIFEST_SCHEMA = "inferload.experiment"
MANIFEST_VERSION = 1
CELL_DONE = "done"
CELL_FAILED = "failed"

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


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing or unreadable (treated as not done)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
