"""The per-request results format (version 2): one record per request, streamed as JSON Lines.

Version 2 added `cache` (hit / miss / none, from a cache's X-Cache-Status); version 1 streams are
still read, their records with `cache` "none" (no cache was ever in front of them).

Why a stream with a header: an interrupted run keeps every record written so far, and any run
can be re-analysed later without guessing its format (the header names schema and version, and
echoes the resolved settings). docs/results-format.md documents the format for readers.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from inferload_formats import SchemaError, check_version, strict_fields, validate

from ._clock import wall_minus_monotonic_ns

SCHEMA = "inferload.requests"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # what read_records / read_run accept
Status = Literal["ok", "error", "timeout", "dropped"]
FLUSH_INTERVAL_S = 0.25


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request: times are `time.monotonic_ns()` (one clock for all processes on Linux).

    Latency = done - scheduled (free of coordinated omission), service time = done - sent,
    lateness = sent - scheduled (the generator's own health). Dropped arrivals have
    sent_ns = done_ns = scheduled_ns and were never sent.
    """

    seq: int
    stream: int
    server: str
    protocol: str
    batch: int
    scheduled_ns: int
    sent_ns: int
    done_ns: int
    bytes_out: int
    bytes_in: int
    status: Status
    code: int
    error: str | None
    cache: str = "none"  # "hit" | "miss": a cache in front answered with X-Cache-Status; "none": no cache

    @property
    def latency_ns(self) -> int:
        """done - scheduled: what a client waited, counted from when it meant to send."""
        return self.done_ns - self.scheduled_ns

    @property
    def service_ns(self) -> int:
        return self.done_ns - self.sent_ns

    @property
    def lateness_ns(self) -> int:
        """sent - scheduled: the generator's own delay."""
        return self.sent_ns - self.scheduled_ns


RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))
_RECORD_VALUES = attrgetter(*RECORD_FIELDS)  # a record's field values, in RECORD_FIELDS' order


@strict_fields
@dataclass(frozen=True)
class RunHeader:
    """Line 1 of every records stream: what produced the records that follow.

    `measure_start_ns` .. `measure_end_ns` is the stream's steady window; the run's measuring window
    is where every stream's window holds (`run_window`).
    """

    run: str
    stream: int
    settings: dict[str, Any]  # the resolved LoadSettings, plus `streams` (how many share the rate)
    measure_start_ns: int
    measure_end_ns: int
    server_kind: str | None = None
    hostname: str = field(default_factory=lambda: os.uname().nodename)
    pid: int = field(default_factory=os.getpid)
    versions: dict[str, str] = field(default_factory=dict)
    # wall - monotonic clock of this host: puts streams of several hosts on one timeline (read_run);
    # None in streams written before it was recorded (they are all of one host)
    wall_minus_monotonic_ns: int | None = field(default_factory=wall_minus_monotonic_ns)
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # schema first, so `head -1` reads naturally
        return {"schema": data.pop("schema"), "schema_version": data.pop("schema_version"), **data}

    @property
    def rate(self) -> float | None:
        """The arrival rate this stream was asked for: its settings' rate over the streams sharing it
        (None in closed loop)."""
        rate = self.settings.get("rate")
        if not rate or self.settings.get("mode", "open") != "open":
            return None
        return float(rate) / max(1, int(self.settings.get("streams") or self.settings.get("processes") or 1))

    def shifted(self, shift_ns: int) -> RunHeader:
        """The header with its window moved by `shift_ns` (onto another host's timeline)."""
        return replace(self, measure_start_ns=self.measure_start_ns + shift_ns,
                       measure_end_ns=self.measure_end_ns + shift_ns)


# Fields a readable version's writers did not always write (read as unknown, never as the reader's own)
_HEADER_ADDED_LATER: dict[str, Any] = {"wall_minus_monotonic_ns": None}


def run_window(headers: Sequence[RunHeader]) -> tuple[int, int]:
    """The run's measuring window, [start, end) in ns: where every stream's own window holds (the
    latest start, the earliest end), so a rate measured in it has every stream sending its share.
    Empty (end == start) when the streams' windows do not overlap."""
    if not headers:
        raise ValueError("a run without streams has no measuring window")
    start = max(h.measure_start_ns for h in headers)
    end = min(h.measure_end_ns for h in headers)
    return start, max(start, end)


def stream_path(run_dir: str | Path, stream: int | None = None) -> Path:
    """`requests.jsonl` for a single stream, `requests.<stream>.jsonl` for one of several."""
    name = "requests.jsonl" if stream is None else f"requests.{stream}.jsonl"
    return Path(run_dir) / name


class RecordWriter:
    """Streams records to JSON Lines, header first; flushes at least every FLUSH_INTERVAL_S.

    `add` buffers; `flush_if_due` (called by `add` and by a periodic timer in the engine) writes
    the buffer out, so a killed process loses at most the last quarter second.
    """

    def __init__(self, target: str | Path | IO[bytes], header: RunHeader) -> None:
        if isinstance(target, (str, Path)):
            self._file: IO[bytes] = open(target, "wb")  # noqa: SIM115 - closed in close()
            self._owns_file = True
        else:
            self._file = target
            self._owns_file = False
        self._buffer: list[bytes] = [orjson.dumps(header.to_dict()) + b"\n"]
        self._last_flush = time.monotonic()
        self.count = 0
        self.flush()

    def add(self, record: RequestRecord) -> None:
        self._buffer.append(orjson.dumps(record) + b"\n")
        self.count += 1
        self.flush_if_due()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._file.write(b"".join(self._buffer))
            self._buffer.clear()
        self._file.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        if self._owns_file:
            self._file.close()

    def discard(self) -> None:
        """Close without writing what is still buffered (a write already failed: a full disk).
        May raise the OSError of the file's own last flush; the file is closed all the same."""
        self._buffer.clear()
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_header(path: str | Path, header: RunHeader) -> None:
    """Replace line 1 of a finished records stream (early stopping learns the window's end last).

    The records are copied after the new header into a sibling file that then replaces the stream,
    so a crash leaves either the old stream or the new one, never half of each.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(path, "rb") as source, open(partial, "wb") as target:
        source.readline()
        target.write(orjson.dumps(header.to_dict()) + b"\n")
        shutil.copyfileobj(source, target, 1 << 20)
    os.replace(partial, path)


def _open_lines(source: str | Path | IO[bytes] | IO[str]) -> tuple[Iterator[bytes | str], IO[Any] | None]:
    if isinstance(source, (str, Path)):
        handle = open(source, "rb")  # noqa: SIM115 - closed by the caller
        return iter(handle), handle
    return iter(source), None


def _check_header(line: bytes | str, where: str) -> RunHeader:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"{where}: line 1 is not JSON ({exc}); expected an {SCHEMA} header") from exc
    if isinstance(header, dict) and "schema" in header and header["schema"] != SCHEMA:
        raise SchemaError(f"{where}: not an {SCHEMA} stream (line 1 has schema={_schema_of(header)!r})")
    check_version(where, header, SCHEMA, READABLE_VERSIONS)
    return validate(RunHeader, {**_HEADER_ADDED_LATER, **header}, f"{where}: line 1", f"{SCHEMA} header")


def _schema_of(header: Any) -> Any:
    return header.get("schema") if isinstance(header, dict) else None


def _where(source: object) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<stream>")


def read_header(source: str | Path | IO[bytes] | IO[str]) -> RunHeader:
    """The header of a records stream, checked for schema, version and fields."""
    lines, handle = _open_lines(source)
    try:
        first = next(lines, None)
        if first is None:
            raise SchemaError(f"{_where(source)}: empty file, expected an {SCHEMA} header")
        return _check_header(first, _where(source))
    finally:
        if handle is not None:
            handle.close()


def read_records(source: str | Path | IO[bytes] | IO[str]) -> Iterator[RequestRecord]:
    """Yield the records of one stream (a path or an open file), refusing other schemas/versions.

    A truncated last line (the writer was killed mid-write) is skipped, not an error.
    """
    where = _where(source)
    lines, handle = _open_lines(source)
    try:
        first = next(lines, None)
        if first is None:
            raise SchemaError(f"{where}: empty file, expected an {SCHEMA} header")
        _check_header(first, where)
        # The records' own fields are checked by the dataclass (a misspelt or missing one is a TypeError
        # naming it): at millions of records per run, the fast path, not pydantic.
        for number, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                if _is_last(lines):
                    return
                raise SchemaError(f"{where}: line {number} is not JSON") from None
            try:
                yield RequestRecord(**data)
            except TypeError as exc:
                raise SchemaError(f"{where}: line {number} is not a RequestRecord ({exc})") from exc
    finally:
        if handle is not None:
            handle.close()


def _is_last(lines: Iterator[Any]) -> bool:
    return next(lines, None) is None


@dataclass(frozen=True)
class RunData:
    """A run directory read back: one header per stream and every record as a DataFrame.

    Derived columns (`add_derived_times`): latency_ms, service_ms, lateness_ms, and `in_window`, true
    for records scheduled inside the run's measuring window (`run_window` of the headers), the one
    window the load summary and the analysis both count in. Headers are on the first host's timeline
    (`clock_shifts[i]`: how far stream i's times were moved to get there; 0 on the first host).
    """

    headers: list[RunHeader]
    records: Any  # pandas.DataFrame (typed loosely: pandas is imported lazily)
    clock_shifts: tuple[int, ...] = ()

    @property
    def header(self) -> RunHeader:
        return self.headers[0]

    @property
    def window(self) -> tuple[int, int]:
        """The run's measuring window: [start, end) in ns (`run_window`)."""
        return run_window(self.headers)

    @property
    def measure_start_ns(self) -> int:
        return self.window[0]

    @property
    def measure_end_ns(self) -> int:
        return self.window[1]

    @property
    def window_s(self) -> float:
        start, end = self.window
        return (end - start) / 1e9

    @property
    def identity(self) -> RunIdentity:
        return run_identity(self.headers)


@dataclass(frozen=True)
class RunIdentity:
    """What one run measured, from its streams' headers (the resolved settings every stream echoes):
    the one place analysis learns a run's server, protocol, load and batch."""

    server: str
    protocol: str
    mode: str  # "open" | "closed"
    batch: int
    rate: float | None  # open loop: the run's total arrival rate (the streams' shares summed)
    concurrency: int | None  # closed loop
    server_kind: str | None
    repeat_share: float | None


def run_identity(headers: Sequence[RunHeader], where: object = "<run>") -> RunIdentity:
    """The identity of a run from its streams' headers; SchemaError when the streams disagree.

    The rate is the sum of the streams' shares (`RunHeader.rate`): `run_load` streams each carry the
    total over their number, Locust users and hosts of a cluster their own share.
    """
    if not headers:
        raise SchemaError(f"{where}: no records stream, so no run settings")
    settings = [h.settings for h in headers]
    first = settings[0]
    for key in ("server", "protocol", "mode", "batch"):
        if key not in first:
            raise SchemaError(f"{where}: the header's settings lack {key!r} (expected resolved LoadSettings)")
        if any(s.get(key) != first[key] for s in settings):
            raise SchemaError(f"{where}: the streams disagree on {key!r}: one run measures one thing")
    shares = [h.rate for h in headers]
    rate = float(f"{math.fsum(r for r in shares if r is not None):.12g}") if first["mode"] == "open" else None
    kind = next((h.server_kind or h.settings.get("server_kind") for h in headers
                 if h.server_kind or h.settings.get("server_kind")), None)
    concurrency = first.get("concurrency") if first["mode"] == "closed" else None
    repeat_share = first.get("repeat_share")
    return RunIdentity(
        server=str(first["server"]),
        protocol=str(first["protocol"]),
        mode=str(first["mode"]),
        batch=int(first["batch"]),
        rate=rate if rate else None,
        concurrency=int(concurrency) if concurrency is not None else None,
        server_kind=str(kind) if kind else None,
        repeat_share=float(repeat_share) if repeat_share is not None else None,
    )


def run_streams(run_dir: str | Path) -> list[Path]:
    """The records files of a run directory, in stream order."""
    run_dir = Path(run_dir)
    single = run_dir / "requests.jsonl"
    many = sorted(run_dir.glob("requests.*.jsonl"), key=lambda p: (len(p.name), p.name))
    return ([single] if single.exists() else []) + many


_INT_COLUMNS = ["seq", "stream", "batch", "scheduled_ns", "sent_ns", "done_ns", "bytes_out", "bytes_in",
                "code"]


def add_derived_times(records: Any, window: tuple[int, int]) -> Any:
    """The records DataFrame with the derived columns of `RequestRecord`'s times, in ms (latency =
    done - scheduled, service = done - sent, lateness = sent - scheduled), and `in_window`: scheduled
    inside `window` [start, end)."""
    records["latency_ms"] = (records["done_ns"] - records["scheduled_ns"]) / 1e6
    records["service_ms"] = (records["done_ns"] - records["sent_ns"]) / 1e6
    records["lateness_ms"] = (records["sent_ns"] - records["scheduled_ns"]) / 1e6
    start, end = window
    records["in_window"] = (records["scheduled_ns"] >= start) & (records["scheduled_ns"] < end)
    return records


def read_run(run_dir: str | Path) -> RunData:
    """Read every records stream of a run directory into one DataFrame (see RunData)."""
    import pandas as pd

    paths = run_streams(run_dir)
    if not paths:
        raise FileNotFoundError(
            f"{run_dir}: no requests.jsonl or requests.<stream>.jsonl here; is this a load run directory?"
        )
    headers: list[RunHeader] = []
    shifts: list[int] = []
    frames = []
    host_offsets: dict[str, int] = {}  # the first offset seen per host: one clock per machine
    for path in paths:
        header = read_header(path)
        # one tuple of field values per record (dataclasses.asdict deep-copies each: 80 % of the read)
        rows = list(map(_RECORD_VALUES, read_records(path)))
        frame = pd.DataFrame(rows, columns=list(RECORD_FIELDS))
        shift = _clock_shift(header, host_offsets)
        if shift:
            for column in ("scheduled_ns", "sent_ns", "done_ns"):
                frame[column] = frame[column].astype("int64") + shift
            header = header.shifted(shift)
        headers.append(header)
        shifts.append(shift)
        frames.append(frame)
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RECORD_FIELDS))
    records[_INT_COLUMNS] = records[_INT_COLUMNS].astype("int64")
    records = add_derived_times(records, run_window(headers))
    records = records.sort_values(["scheduled_ns", "stream", "seq"], ignore_index=True)
    return RunData(headers=headers, records=records, clock_shifts=tuple(shifts))


def _clock_shift(header: RunHeader, host_offsets: dict[str, int]) -> int:
    """Nanoseconds that put this stream's times on the first host's monotonic timeline.

    Streams of one host share its monotonic clock (shift 0 among them); another host's times move by
    the difference of the hosts' wall - monotonic offsets (as exact as their wall clocks agree).
    """
    if header.wall_minus_monotonic_ns is None:
        return 0
    host_offsets.setdefault(header.hostname, header.wall_minus_monotonic_ns)
    reference = next(iter(host_offsets.values()))
    return host_offsets[header.hostname] - reference
