"""Read a run's per-request records (`requests*.jsonl`, schema `inferload.requests` v1).

The format belongs to `loadtest/_schema.py`; this module checks every file's header (schema and
version, refusing others with a message naming the file, the version found and the one supported)
and then reads the records through `loadtest.read_run`, so analysis never parses records its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from analysis.errors import ResultsError
from loadtest import READABLE_VERSIONS, SCHEMA, SCHEMA_VERSION, RequestRecord

# The format's owner is loadtest: its constants, never a copy of them.
REQUESTS_SCHEMA = SCHEMA
SUPPORTED_REQUESTS_VERSION = SCHEMA_VERSION
RECORD_COLUMNS = tuple(f.name for f in fields(RequestRecord))


@dataclass(frozen=True)
class RunRecords:
    """All request records of one run directory plus the headers of the files they came from."""

    headers: tuple[dict[str, Any], ...]
    records: pd.DataFrame

    @property
    def header(self) -> dict[str, Any]:
        """The first file's header; every stream of one run shares its settings."""
        return self.headers[0] if self.headers else {}


def request_files(run_dir: Path) -> list[Path]:
    """`requests.jsonl` and/or `requests.<stream>.jsonl`, in a stable order."""
    return sorted(p for p in run_dir.glob("requests*.jsonl") if p.is_file())


def check_version(path: Path, document: Any, schema: str, supported: int) -> None:
    """Refuse any document that is not exactly `schema` at version `supported` (never guess a format)."""
    if not isinstance(document, dict) or "schema" not in document:
        raise ResultsError(
            f'{path}: no format header (expected a JSON object with "schema": "{schema}" and '
            f'"schema_version": {supported}); this file was not written by inferload, or is damaged'
        )
    found_schema = document.get("schema")
    found_version = document.get("schema_version")
    if found_schema != schema:
        raise ResultsError(f"{path}: schema is {found_schema!r}, expected {schema!r}")
    if found_version != supported:
        newer = isinstance(found_version, int) and found_version > supported
        hint = (
            "it was written by a newer inferload: upgrade inferload to read it"
            if newer
            else "re-run the experiment with this inferload version to get readable results"
        )
        raise ResultsError(
            f"{path}: {schema} format version {found_version!r} is not supported "
            f"(this inferload reads version {supported}); {hint}"
        )


def _check_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        first = next((line for line in handle if line.strip()), None)
    if first is None:
        raise ResultsError(f"{path}: empty file (no header line); the run wrote nothing")
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path}: line 1 is not JSON ({exc}); expected the format header") from exc
    found = header.get("schema_version") if isinstance(header, dict) else None
    # Older versions the format's owner still reads (v1: no `cache` field) are accepted as they are.
    supported = found if found in READABLE_VERSIONS else SUPPORTED_REQUESTS_VERSION
    check_version(path, header, REQUESTS_SCHEMA, supported)
    return dict(header)


def read_requests(run_dir: Path | str) -> RunRecords:
    """Headers and all records of a run directory as one DataFrame (columns include `RECORD_COLUMNS`).

    Every file's header is version-checked here first (so the refusal names the file, the version found
    and the one supported); the records themselves are parsed by the owner of the format,
    `loadtest.read_run`.
    """
    from loadtest import SchemaError, read_run

    run_dir = Path(run_dir)
    files = request_files(run_dir)
    if not files:
        raise ResultsError(f"{run_dir}: no requests*.jsonl file; this is not a load run directory")
    for path in files:
        _check_header(path)
    try:
        run = read_run(run_dir)
    except (SchemaError, KeyError, TypeError) as exc:
        raise ResultsError(f"{run_dir}: unreadable request records: {exc}") from exc
    return RunRecords(headers=tuple(run.headers), records=run.records)
