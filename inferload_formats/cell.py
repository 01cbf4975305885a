"""`cell.json` (`inferload.cell` v2; v1 is read too): one cell repetition's settings and how it ended.

The matrix's bookkeeping of a cell (id, server config, repetition, status); what the load generator
measured is in the run's own files (records, load.json). The runner writes it last, so a cell without
one was interrupted; resume reruns every cell whose cell.json does not say `done`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inferload_formats._document import Document, SchemaError

CELL_FILE = "cell.json"
CELL_SCHEMA: Literal["inferload.cell"] = "inferload.cell"
CELL_VERSION = 2  # 2 added round, position, arm and the machine during the cell
CELL_READABLE = (1, 2)
CELL_DONE = "done"
CELL_FAILED = "failed"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CellCalibration(_Part):
    """The calibration point nearest in time to the cell (models/calibration.py), at the cell's batch."""

    index: int  # the point's index in calibration.jsonl
    label: str
    seconds_away: float  # from the middle of the cell's load to the calibration
    batch: int  # the calibrated batch nearest the cell's
    predict_ms: float  # median in-process predict time there
    bandwidth_gb_s: float | None


class CellProbe(_Part):
    """The low-duty probe's predict calls while the cell's load ran (models/calibration.py)."""

    batch: int
    median_ms: float
    p90_ms: float
    n: int


class CellMachine(_Part):
    """The machine while the cell's load ran: its speed (nearest calibration, the probe in the cell's
    own window) and what else took CPU (inferload/machine.py). The servers' own per-request compute
    time for the same window is in the cell's server_metrics.jsonl (analysis.server_side reads it)."""

    window_ns: tuple[int, int]  # monotonic start and end of the cell's load (the records' clock)
    cpu_count: int  # CPUs the shares below are of
    steal_share: float | None  # share of all CPU time the hypervisor gave to other guests (/proc/stat)
    load_average_1m: float | None  # the 1-minute load average, mean over the cell's samples
    # CPU of processes neither the servers nor ours, in cores; None: the servers were not inferload's
    other_cpu_cores: float | None
    calibration: CellCalibration | None = None
    probe: CellProbe | None = None


class CellRecord(Document):
    """cell.json: a cell's settings as the matrix gave them, and how it ended."""

    READABLE = CELL_READABLE

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


def write_cell(cell_dir: Path, record: dict[str, Any] | CellRecord) -> CellRecord:
    """Check `record` against the format, then write `cell_dir/cell.json` atomically."""
    typed = record if isinstance(record, CellRecord) else CellRecord.model_validate(record)
    typed.write(cell_dir / CELL_FILE)
    return typed


def read_cell(cell_dir: Path) -> CellRecord | None:
    """`cell_dir/cell.json`, or None when the cell has none (interrupted); SchemaError when it is not
    `inferload.cell` of the version read here, or has a bad field."""
    path = cell_dir / CELL_FILE
    if not path.is_file():
        return None
    return CellRecord.read(path)


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
