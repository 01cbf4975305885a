"""What the runner records about a matrix's machine and software in `manifest.json`.

The formats themselves (`Manifest`, `CellRecord`, their versions, readers and writers) live in the
leaf package `inferload_formats`, so analysis reads them without importing the runner; import them
from there. This module gathers what only the runner knows: the
installed versions (including `java -version`, TorchServe's runtime) and the machine (psutil).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

from inferload.experiments import Experiment
from inferload_formats import MANIFEST_SCHEMA, MANIFEST_VERSION
from inferload_formats.versions import installed_versions

__all__ = ["build_manifest", "machine_info", "now_iso", "package_versions"]

_PACKAGES = (
    "inferload", "tensorflow-cpu", "tensorflow", "tensorflow-serving-api", "torch", "torchserve",
    "torch-model-archiver", "locust", "gevent", "geventhttpclient", "grpcio", "protobuf", "numpy",
    "orjson", "pydantic", "pandas",
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers (servers, runtimes, generator), and
    the Java that runs TorchServe."""
    return {**installed_versions(_PACKAGES), "java": _java_version()}


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
