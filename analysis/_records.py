"""Read a run's per-request records (`requests*.jsonl`, `inferload.requests`) through their owner.

The format, its versions and its reader belong to `loadtest/_schema.py`: `loadtest.read_run` checks
every stream's header (schema, version, fields), parses the records and derives the latency columns
(latency_ms = done - scheduled, service_ms = done - sent, lateness_ms = sent - scheduled) and
`in_window` (the run's one measuring window), once. This module only turns the owner's refusals into
`ResultsError`.
"""

from __future__ import annotations

from pathlib import Path

from analysis.errors import ResultsError
from inferload_formats import SchemaError
from loadtest import RunData, read_run
from loadtest._schema import run_streams


def request_files(run_dir: Path) -> list[Path]:
    """`requests.jsonl` and/or `requests.<stream>.jsonl`, in stream order."""
    return [p for p in run_streams(run_dir) if p.is_file()]


def read_requests(run_dir: Path | str) -> RunData:
    """Headers and all records of a run directory (see `loadtest.RunData`), or `ResultsError` naming
    the file and what is wrong with it (another schema, an unknown or newer version, a bad field)."""
    run_dir = Path(run_dir)
    if not request_files(run_dir):
        raise ResultsError(f"{run_dir}: no requests*.jsonl file; this is not a load run directory")
    try:
        return read_run(run_dir)
    except SchemaError as exc:
        raise ResultsError(str(exc)) from exc
