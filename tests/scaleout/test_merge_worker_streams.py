"""Record streams written on several hosts merge into one run: the total rate is the sum of the
streams' shares, load.json says which host sent what, and a worker that stopped early is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from loadtest import LoadSettings, MergeError, merge_runs
from loadtest._arrivals import PoissonArrivals, schedule_ns
from loadtest._schema import RecordWriter, RequestRecord, RunHeader, read_run, stream_path

START_NS = 10**12
RUN_S = 10.0


def write_stream(directory: Path, stream: int, *, host: str, pid: int, rate: float, stop_s: float = RUN_S,
                 protocol: str = "grpc", window_s: float = RUN_S) -> int:
    """A Locust user's stream (its share `rate`), Poisson arrivals until `stop_s`; returns the count."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = LoadSettings(server="tfserving", protocol=protocol, rate=rate, duration_s=window_s, features=8)
    header = RunHeader(run="locust", stream=stream, settings={**settings.resolved(), "user_class": "X"},
                       measure_start_ns=START_NS, measure_end_ns=START_NS + int(window_s * 1e9),
                       hostname=host, pid=pid)
    offsets = schedule_ns(PoissonArrivals(rate, seed=stream), duration_s=stop_s)
    with RecordWriter(stream_path(directory, stream), header) as writer:
        for seq, offset in enumerate(offsets):
            at = START_NS + int(offset)
            writer.add(RequestRecord(seq=seq, stream=stream, server="tfserving", protocol=protocol, batch=1,
                                     scheduled_ns=at, sent_ns=at + 50_000, done_ns=at + 2_000_000,
                                     bytes_out=40, bytes_in=30, status="ok", code=0, error=None))
    return len(offsets)


def two_hosts(tmp_path: Path, *, b_stops_at: float = RUN_S) -> tuple[Path, Path]:
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    for stream in (0, 1):
        write_stream(a, stream, host="gen-a", pid=11, rate=10.0)
    for stream in (100_000, 100_001):
        write_stream(b, stream, host="gen-b", pid=22, rate=10.0, stop_s=b_stops_at)
    return a, b


def test_streams_of_two_hosts_merge_into_one_run_at_the_total_rate(tmp_path: Path) -> None:
    a, b = two_hosts(tmp_path)
    summary = merge_runs([a, b], tmp_path / "run")

    assert summary.target_rate == pytest.approx(40.0)
    assert summary.processes == 4
    assert summary.hosts["gen-a"]["streams"] == [0, 1]
    assert summary.hosts["gen-b"]["streams"] == [100_000, 100_001]
    assert summary.hosts["gen-a"]["rate"] == pytest.approx(20.0)
    assert [(s.stream, s.host, s.pid) for s in summary.streams] == [
        (0, "gen-a", 11), (1, "gen-a", 11), (100_000, "gen-b", 22), (100_001, "gen-b", 22)]
    assert summary.lost_workers == [] and summary.valid, summary.invalid_reasons
    assert summary.achieved_arrival_rate == pytest.approx(40.0, abs=3 * np.sqrt(400) / RUN_S)
    assert sorted(p.name for p in (tmp_path / "run").glob("requests.*.jsonl")) == [
        "requests.0.jsonl", "requests.1.jsonl", "requests.100000.jsonl", "requests.100001.jsonl"]
    assert json.loads((tmp_path / "run" / "load.json").read_text())["hosts"]["gen-b"]["rate"] == 20.0


def test_a_worker_that_stopped_early_is_named_and_its_records_are_kept(tmp_path: Path) -> None:
    a, b = two_hosts(tmp_path, b_stops_at=3.0)
    summary = merge_runs([a, b], tmp_path / "run")

    assert len(summary.lost_workers) == 1
    assert summary.lost_workers[0].startswith("host gen-b pid 22: stream(s) 100000, 100001 stopped sending")
    assert not summary.valid
    assert any(r.startswith("lost 1 load worker(s) during the run") for r in summary.invalid_reasons)
    lost = [s for s in summary.streams if s.lost]
    assert {s.host for s in lost} == {"gen-b"}
    assert sum(s.arrivals for s in lost) == pytest.approx(2 * 10 * 3.0, abs=3 * np.sqrt(60))


@pytest.mark.parametrize(
    ("rate", "stop_s", "lost"),
    [
        (10.0, RUN_S - 0.5, False),  # 0.5 s quiet at 10/s: 5 gaps, e^-5 - and below the 1 s floor
        (10.0, RUN_S - 2.5, True),  # 2.5 s = 25 mean gaps: beyond max(1 s, 20 gaps)
        (1.0, RUN_S - 8.0, False),  # 8 s quiet at 1/s is only 8 gaps: not evidence of a dead sender
    ],
)
def test_silence_counts_as_lost_only_beyond_twenty_mean_gaps(tmp_path: Path, rate: float, stop_s: float,
                                                              lost: bool) -> None:
    write_stream(tmp_path / "a", 0, host="a", pid=1, rate=50.0)
    write_stream(tmp_path / "b", 1, host="b", pid=2, rate=rate, stop_s=stop_s)
    summary = merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "run")
    assert [s.lost for s in summary.streams] == [False, lost]


def test_streams_that_ran_until_stopped_get_the_window_of_their_records(tmp_path: Path) -> None:
    """Locust workers do not know the run time: their headers' window is 1e9 s long."""
    count = sum(write_stream(tmp_path / "a", k, host="a", pid=1, rate=10.0, window_s=1e9) for k in (0, 1))
    summary = merge_runs([tmp_path / "a"], tmp_path / "run")
    assert summary.window_s == pytest.approx(RUN_S, abs=0.5)
    assert summary.achieved_arrival_rate == pytest.approx(count / summary.window_s, rel=0.01)
    assert summary.counts["ok"] == count


def test_the_merged_window_is_written_into_the_headers_so_every_reader_counts_in_it(tmp_path: Path) -> None:
    """load.json and a later `read_run` (the analysis) count in one window: the one the headers say."""
    count = sum(write_stream(tmp_path / "a", k, host="a", pid=1, rate=10.0, window_s=1e9) for k in (0, 1))
    summary = merge_runs([tmp_path / "a"], tmp_path / "run")
    again = read_run(tmp_path / "run")
    assert again.window_s == summary.window_s
    assert int(again.records["in_window"].sum()) == summary.counts["ok"] == count
    assert all(h.measure_end_ns == again.window[1] for h in again.headers)


def test_the_run_window_is_where_every_streams_window_holds(tmp_path: Path) -> None:
    """Users started 2 s apart: the run's rate is measured where both send (the latest start, the
    earliest end), not over their union, where only one of them sent."""
    write_stream(tmp_path / "a", 0, host="a", pid=1, rate=10.0)
    late = tmp_path / "b"
    write_stream(late, 1, host="a", pid=1, rate=10.0)
    path = stream_path(late, 1)
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["measure_start_ns"] += 2 * 10**9
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    summary = merge_runs([tmp_path / "a", late], tmp_path / "run")
    data = read_run(tmp_path / "run")
    assert data.window == (START_NS + 2 * 10**9, int(data.records["scheduled_ns"].max()) + 1)
    assert summary.window_s == data.window_s == pytest.approx(RUN_S - 2, abs=0.5)
    in_window = data.records[data.records["in_window"]]["scheduled_ns"]
    assert in_window.min() >= START_NS + 2 * 10**9


def test_the_same_stream_from_two_sources_is_refused(tmp_path: Path) -> None:
    write_stream(tmp_path / "a", 0, host="a", pid=1, rate=10.0)
    write_stream(tmp_path / "b", 0, host="b", pid=2, rate=10.0)
    with pytest.raises(MergeError, match=r"stream 0 is in both .*a/requests.0.jsonl and .*b/requests.0"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "run")


def test_streams_of_different_loads_are_refused(tmp_path: Path) -> None:
    write_stream(tmp_path / "a", 0, host="a", pid=1, rate=10.0)
    write_stream(tmp_path / "b", 1, host="b", pid=2, rate=10.0, protocol="rest-json")
    with pytest.raises(MergeError, match="protocol='rest-json'.*merge only the streams of one load"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "run")


def test_a_source_without_streams_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MergeError, match="no requests.<stream>.jsonl here"):
        merge_runs([tmp_path / "empty"], tmp_path / "run")


def test_the_merge_command_prints_each_host_and_fails_a_run_that_lost_a_worker(tmp_path: Path) -> None:
    a, b = two_hosts(tmp_path, b_stops_at=3.0)
    done = subprocess.run([sys.executable, "-m", "inferload", "merge", str(a), str(b), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "gen-a: 2 stream(s), target 20/s" in done.stdout
    assert "lost worker: host gen-b pid 22" in done.stdout
