"""calibration.jsonl: how fast this machine ran the model, before, between and after the rounds.

The machine is part of the measurement: on a shared VM the same in-process predict moves by a factor
of two within minutes (neighbours' memory traffic does not show as steal time). The calibration probe
(`models/probe.py`, pinned to the servers' CPU set) writes this file while a matrix runs:
- a `CalibrationPoint` before the first round, between rounds and at the end: the model's in-process
  predict at each served batch size (median and p90 of up to `n` timed calls) and a memory-bandwidth
  figure (GB/s of a large array copy: bytes read + written over the median copy time);
- a `ProbeSample` now and then while a cell's load runs (the median of a short burst of `calls` timed
  predicts at the smallest served batch, `probe_interval_s` apart: a low-duty probe of the machine's
  speed in the cell's own window; the burst's median keeps one preempted call from counting).

This module owns the format (`inferload.calibration` v1): the typed lines, the writer and the reader,
and the values derived from them (`CalibrationLog.nearest`, `CalibrationLog.probe_window`), so the
runner (cell.json) and the report (timeline, drift flags) read one definition. Times are
`time.monotonic_ns()`, the request records' clock. It imports neither torch nor TensorFlow.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from inferload_formats import SchemaError, check_version, strict_fields, validate

__all__ = [
    "CALIBRATION_FILE",
    "CALIBRATION_SCHEMA",
    "CALIBRATION_VERSION",
    "CalibrationError",
    "CalibrationHeader",
    "CalibrationLog",
    "CalibrationPoint",
    "CalibrationWriter",
    "PredictTiming",
    "ProbeSample",
    "ProbeWindow",
    "read_calibration",
]

CALIBRATION_FILE = "calibration.jsonl"
CALIBRATION_SCHEMA = "inferload.calibration"
CALIBRATION_VERSION = 1


# calibration.jsonl that is not `inferload.calibration` of the version read here, or has a bad line:
# the formats' one SchemaError, under this module's name for it
CalibrationError = SchemaError
REDO = "measure again with this inferload"


@strict_fields
@dataclass(frozen=True)
class CalibrationHeader:
    """Line 1: what the probe ran (framework, threads, model) and where (CPU set, clocks)."""

    framework: str  # "torch"
    threads: int  # intra-op threads of the predict (1: the probe stays out of the servers' way)
    model: dict[str, int]  # LinearSpec: classes, features, seed
    batches: tuple[int, ...]  # the served batch sizes calibrated
    cpus: tuple[int, ...] | None  # the CPU set the probe was pinned to (None: unpinned)
    probe_interval_s: float  # seconds between two probe calls while a cell runs
    created_at: str
    wall_minus_monotonic_ns: int  # time.time_ns() - time.monotonic_ns() when the probe started
    schema: str = CALIBRATION_SCHEMA
    schema_version: int = CALIBRATION_VERSION


@strict_fields
@dataclass(frozen=True)
class PredictTiming:
    """Timed in-process predict calls at one batch size (nearest-rank median and p90, ms)."""

    batch: int
    median_ms: float
    p90_ms: float
    n: int


@strict_fields
@dataclass(frozen=True)
class CalibrationPoint:
    """One calibration: predict at every served batch size, then a memory-bandwidth figure."""

    index: int  # 0, 1, ... in the order taken
    label: str  # "before round 0", "after round 3", "end"
    t_ns: int  # monotonic time at the start of the calibration
    at: str  # wall time, ISO 8601 UTC
    seconds: float  # how long it took
    predict: tuple[PredictTiming, ...]
    bandwidth_gb_s: float | None  # (read + written bytes) / median copy time of a large array
    kind: str = "calibration"

    def predict_at(self, batch: int) -> PredictTiming | None:
        """The timing at `batch`, else at the nearest batch calibrated (None: none)."""
        if not self.predict:
            return None
        return min(self.predict, key=lambda p: (abs(p.batch - batch), p.batch))


@strict_fields
@dataclass(frozen=True)
class ProbeSample:
    """One burst of the low-duty probe while a cell ran: the median of `calls` back-to-back predicts."""

    t_ns: int  # monotonic time at the start of the burst
    batch: int
    ms: float  # the burst's median call time
    calls: int
    kind: str = "probe"


@dataclass(frozen=True)
class ProbeWindow:
    """The probe's bursts inside one time window (a cell's): nearest-rank median and p90 of their
    medians, ms, over `n` bursts."""

    batch: int
    median_ms: float
    p90_ms: float
    n: int


def _nearest_rank(values: Sequence[float], q: float) -> float:
    # nearest rank, inferload's one percentile method (loadtest._percentiles; numpy calls it
    # inverted_cdf): models/ imports no other package of ours
    return float(np.percentile(np.asarray(values, dtype=np.float64), q, method="inverted_cdf"))


def timing_of(batch: int, times_ms: Sequence[float]) -> PredictTiming:
    """A `PredictTiming` from the individual call times (ms)."""
    return PredictTiming(batch=batch, median_ms=_nearest_rank(times_ms, 50),
                         p90_ms=_nearest_rank(times_ms, 90), n=len(times_ms))


@dataclass(frozen=True)
class CalibrationLog:
    """A calibration.jsonl read back: its header, calibration points and probe samples, in file order."""

    header: CalibrationHeader
    points: tuple[CalibrationPoint, ...]
    probes: tuple[ProbeSample, ...] = field(default=())

    def nearest(self, t_ns: int) -> CalibrationPoint | None:
        """The calibration point closest in time to `t_ns` (None: there is none)."""
        if not self.points:
            return None
        return min(self.points, key=lambda point: abs(point.t_ns - t_ns))

    def probe_window(self, start_ns: int, end_ns: int) -> ProbeWindow | None:
        """The probe's bursts that started in [start_ns, end_ns) at its (smallest) batch; None: none."""
        inside = [s for s in self.probes if start_ns <= s.t_ns < end_ns]
        if not inside:
            return None
        batch = min(s.batch for s in inside)
        times = [s.ms for s in inside if s.batch == batch]
        return ProbeWindow(batch=batch, median_ms=_nearest_rank(times, 50), p90_ms=_nearest_rank(times, 90),
                           n=len(times))


def _dump(entry: Any) -> dict[str, Any]:
    return asdict(entry)


class CalibrationWriter:
    """Appends the lines of one calibration.jsonl (header first); every line is flushed as written.

    A file that already holds a header (a resumed run) is appended to under a new header, and its
    points keep counting from where the file left off.
    """

    def __init__(self, path: str | Path, header: CalibrationHeader) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.next_index = len(read_calibration(self.path).points) if self.path.is_file() else 0
        self._out: IO[str] = self.path.open("a", encoding="utf-8")
        self._write(_dump(header))

    def _write(self, line: dict[str, Any]) -> None:
        self._out.write(json.dumps(line) + "\n")
        self._out.flush()

    def add_point(self, label: str, t_ns: int, seconds: float, predict: Sequence[PredictTiming],
                  bandwidth_gb_s: float | None) -> CalibrationPoint:
        point = CalibrationPoint(index=self.next_index, label=label, t_ns=t_ns, at=now_iso(), seconds=seconds,
                                 predict=tuple(predict), bandwidth_gb_s=bandwidth_gb_s)
        self.next_index += 1
        self._write(_dump(point))
        return point

    def add_probe(self, sample: ProbeSample) -> None:
        self._write(_dump(sample))

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> CalibrationWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_header(*, framework: str, threads: int, model: dict[str, int], batches: Sequence[int],
               cpus: Sequence[int] | None, probe_interval_s: float) -> CalibrationHeader:
    return CalibrationHeader(
        framework=framework, threads=threads, model=dict(model), batches=tuple(batches),
        cpus=tuple(cpus) if cpus is not None else None, probe_interval_s=probe_interval_s,
        created_at=now_iso(), wall_minus_monotonic_ns=time.time_ns() - time.monotonic_ns())


def read_calibration(path: str | Path) -> CalibrationLog:
    """Read a calibration.jsonl written by `CalibrationWriter`.

    CalibrationError names the file and, for another version, the version it says and the one read
    here; a line with a missing or misspelt field is refused. A torn last line (the probe was killed
    mid-write) is skipped. A file with several headers (a resumed run) keeps the first one.
    """
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        raise CalibrationError(f"{path}: file not found") from None
    header: CalibrationHeader | None = None
    points: list[CalibrationPoint] = []
    probes: list[ProbeSample] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            if number == len(lines):
                continue  # torn last line
            raise CalibrationError(f"{path}: line {number} is not valid JSON") from None
        where = f"{path}: line {number}"
        if isinstance(entry, dict) and "schema" in entry:
            check_version(path, entry, CALIBRATION_SCHEMA, CALIBRATION_VERSION, redo=REDO)
            found = validate(CalibrationHeader, entry, where, "calibration header")
            header = header or found
            continue
        if header is None:
            raise CalibrationError(f"{path}: line {number} comes before the {CALIBRATION_SCHEMA} header")
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind == "probe":
            probes.append(validate(ProbeSample, entry, where, "ProbeSample"))
        elif kind == "calibration":
            points.append(validate(CalibrationPoint, entry, where, "CalibrationPoint"))
        else:
            raise CalibrationError(
                f"{path}: line {number}: kind {kind!r} is neither 'calibration' nor 'probe'")
    if header is None:
        raise CalibrationError(f"{path}: no {CALIBRATION_SCHEMA} header; it was not written by inferload")
    return CalibrationLog(header=header, points=tuple(points), probes=tuple(probes))
