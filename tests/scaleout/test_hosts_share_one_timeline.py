"""Streams from several hosts are read onto one timeline: each host's monotonic clock has its own
origin, and the wall - monotonic offset in every header says how they line up."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest._schema import RecordWriter, RequestRecord, RunHeader, read_run, stream_path

S = 1_000_000_000


def write(run: Path, stream: int, *, host: str, offset: int | None, at: list[int]) -> None:
    """Records scheduled at `at` (this host's monotonic ns); window [at[0], at[-1] + 1 s)."""
    header = RunHeader(run="r", stream=stream, settings={}, measure_start_ns=at[0], measure_end_ns=at[-1] + S,
                       hostname=host, wall_minus_monotonic_ns=offset or 0)
    with RecordWriter(stream_path(run, stream), header) as writer:
        for seq, t in enumerate(at):
            writer.add(RequestRecord(seq=seq, stream=stream, server="tfserving", protocol="grpc", batch=1,
                                     scheduled_ns=t, sent_ns=t + 1000, done_ns=t + 2000, bytes_out=1,
                                     bytes_in=1, status="ok", code=0, error=None))
    if offset is None:  # a stream written before headers carried the offset
        path = stream_path(run, stream)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text(lines[0].replace(',"wall_minus_monotonic_ns":0', "") + "".join(lines[1:]))


def scheduled(run: Path, stream: int) -> list[int]:
    records = read_run(run).records
    return records[records["stream"] == stream]["scheduled_ns"].tolist()


def test_another_hosts_times_move_by_the_difference_of_the_offsets(tmp_path: Path) -> None:
    # host b booted 1000 s later: its monotonic clock reads 1000 s less at the same wall instant
    write(tmp_path, 0, host="a", offset=5_000 * S, at=[2_000 * S, 2_001 * S])
    write(tmp_path, 1, host="b", offset=6_000 * S, at=[1_000 * S + S // 2])
    assert scheduled(tmp_path, 1) == [2_000 * S + S // 2]  # half a second after host a's first arrival
    data = read_run(tmp_path)
    assert data.clock_shifts[1] == 1_000 * S
    assert data.headers[1].measure_start_ns == 2_000 * S + S // 2
    assert data.records["latency_ms"].tolist() == pytest.approx([0.002] * 3)  # durations never change


def test_streams_of_one_host_keep_their_times(tmp_path: Path) -> None:
    """Processes started at different moments estimate the offset a few microseconds apart."""
    write(tmp_path, 0, host="a", offset=5_000 * S, at=[2_000 * S])
    write(tmp_path, 1, host="a", offset=5_000 * S + 3_000, at=[2_000 * S + 10])
    assert scheduled(tmp_path, 1) == [2_000 * S + 10]
    assert read_run(tmp_path).clock_shifts[1] == 0


def test_streams_without_an_offset_are_read_as_they_are(tmp_path: Path) -> None:
    write(tmp_path, 0, host="a", offset=5_000 * S, at=[2_000 * S])
    write(tmp_path, 1, host="b", offset=None, at=[7 * S])
    assert scheduled(tmp_path, 1) == [7 * S]
