"""The results format: header first, one record per line, readable while written, versioned."""

from __future__ import annotations

import io
import time

import orjson
import pytest

from loadtest import (
    SCHEMA_VERSION,
    RecordWriter,
    RequestRecord,
    RunHeader,
    SchemaError,
    read_header,
    read_records,
    read_run,
)
from loadtest._schema import FLUSH_INTERVAL_S, stream_path


def record(
    seq: int, *, scheduled: int, sent: int, done: int, status: str = "ok", stream: int = 0
) -> RequestRecord:
    return RequestRecord(
        seq=seq,
        stream=stream,
        server="torchserve",
        protocol="grpc",
        batch=1,
        scheduled_ns=scheduled,
        sent_ns=sent,
        done_ns=done,
        bytes_out=4096,
        bytes_in=30,
        status=status,
        code=0,
        error=None,  # type: ignore[arg-type]
    )


def header(stream: int = 0, start: int = 0, end: int = 10_000_000_000) -> RunHeader:
    return RunHeader(
        run="t", stream=stream, settings={"rate": 10}, measure_start_ns=start, measure_end_ns=end
    )


def test_header_is_line_one_and_records_round_trip(tmp_path) -> None:
    path = tmp_path / "requests.jsonl"
    records = [record(k, scheduled=k * 10, sent=k * 10 + 1, done=k * 10 + 5) for k in range(3)]
    with RecordWriter(path, header()) as writer:
        for r in records:
            writer.add(r)
    first = orjson.loads(path.read_bytes().splitlines()[0])
    assert first["schema"] == "inferload.requests" and first["schema_version"] == SCHEMA_VERSION == 2
    assert {"run", "settings", "measure_start_ns", "measure_end_ns", "hostname", "pid", "versions"} <= set(
        first
    )
    assert list(read_records(path)) == records
    assert list(read_records(io.BytesIO(path.read_bytes()))) == records  # file objects too
    assert read_header(path).settings == {"rate": 10}


def test_records_reach_the_file_while_the_run_goes_on(tmp_path) -> None:
    """An interrupted run keeps what was written: the writer flushes at least every 0.25 s."""
    path = tmp_path / "requests.jsonl"
    writer = RecordWriter(path, header())
    writer.add(record(0, scheduled=0, sent=0, done=1))
    time.sleep(FLUSH_INTERVAL_S + 0.05)
    writer.add(record(1, scheduled=1, sent=1, done=2))
    assert [r.seq for r in read_records(path)] == [0, 1]  # not closed yet
    writer.close()


def test_a_truncated_last_line_is_skipped(tmp_path) -> None:
    path = tmp_path / "requests.jsonl"
    with RecordWriter(path, header()) as writer:
        writer.add(record(0, scheduled=0, sent=0, done=1))
    path.write_bytes(path.read_bytes() + b'{"seq": 1, "stre')
    assert [r.seq for r in read_records(path)] == [0]


@pytest.mark.parametrize(
    ("first_line", "message"),
    [
        (
            b'{"schema": "inferload.requests", "schema_version": 3}',
            "format version 3; this inferload reads version 1 or 2",
        ),
        (b'{"schema": "vegeta.results", "schema_version": 1}', "not an inferload.requests stream"),
        (b"seq,stream,server", "line 1 is not JSON"),
    ],
)
def test_other_formats_and_versions_are_refused_clearly(tmp_path, first_line: bytes, message: str) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(first_line + b"\n")
    with pytest.raises(SchemaError, match=message):
        list(read_records(path))


def test_read_run_merges_streams_and_derives_latency_service_and_lateness(tmp_path) -> None:
    """stream 0: scheduled 1 s, sent +2 ms, done +12 ms -> latency 12, service 10, lateness 2 (ms)."""
    ms = 1_000_000
    with RecordWriter(stream_path(tmp_path, 0), header(0, start=1000 * ms, end=2000 * ms)) as w:
        w.add(record(0, scheduled=1000 * ms, sent=1002 * ms, done=1012 * ms))
        w.add(record(1, scheduled=500 * ms, sent=500 * ms, done=501 * ms))  # warm-up: outside the window
    with RecordWriter(stream_path(tmp_path, 1), header(1, start=1000 * ms, end=2000 * ms)) as w:
        w.add(record(0, scheduled=1500 * ms, sent=1500 * ms, done=1500 * ms, status="dropped", stream=1))
    run = read_run(tmp_path)
    assert len(run.headers) == 2
    frame = run.records.set_index(["stream", "seq"])
    assert frame.loc[(0, 0), ["latency_ms", "service_ms", "lateness_ms"]].tolist() == [12.0, 10.0, 2.0]
    assert frame["in_window"].to_dict() == {(0, 1): False, (0, 0): True, (1, 0): True}
    assert run.measure_start_ns == 1000 * ms and run.measure_end_ns == 2000 * ms


def test_read_run_on_a_directory_without_records_says_so(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no requests.jsonl"):
        read_run(tmp_path)
