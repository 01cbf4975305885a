"""Against real servers (small model): the schedule holds, every combination answers, errors are records."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from loadtest import PROTOCOLS, SERVERS, read_run, run_load

# alone: achieved rates and the generator's lateness
pytestmark = [pytest.mark.servers, pytest.mark.alone]


def poisson_rel_tolerance(rate: float, seconds: float) -> float:
    """3 standard deviations of a Poisson count, relative: n = 600 -> 12 %."""
    return 3 / np.sqrt(rate * seconds)


def most_in_flight(records) -> int:  # type: ignore[no-untyped-def]
    """The most requests outstanding at once (sent, not yet done)."""
    events = sorted([(t, 1) for t in records["sent_ns"]] + [(t, -1) for t in records["done_ns"]])
    return int(np.cumsum([delta for _, delta in events]).max())


def test_open_loop_gaps_are_exponential_and_every_arrival_is_accounted_for(settings_for, tmp_path) -> None:
    """The schedule is Poisson at the rate asked; every arrival in the window is a record (sent, or
    counted as dropped at the in-flight bound), and requests are sent while earlier ones are still
    outstanding: when they are due, not when an earlier response came back. (How fast the generator
    keeps up, 300/s with no drops and a median lateness under 5 ms, is a benchmark:
    benchmarks/speed_targets.py, not a test.)"""
    rate = 300.0
    summary = run_load(
        settings_for("torchserve", "rest-binary", rate=rate, duration_s=2.0, seed=11),
        tmp_path,
        progress=False,
    )
    run = read_run(tmp_path)
    records = run.records
    scheduled = np.sort(records["scheduled_ns"].to_numpy())
    gaps_s = np.diff(scheduled) / 1e9
    assert stats.kstest(gaps_s, "expon", args=(0, 1 / rate)).pvalue > 0.01
    assert summary.achieved_arrival_rate == pytest.approx(rate, rel=poisson_rel_tolerance(rate, 2.0))
    in_window = records[records["in_window"]]
    assert sum(summary.counts.values()) == len(in_window)  # ok + error + timeout + dropped: every arrival
    assert summary.counts["error"] == summary.counts["timeout"] == 0
    sent = records[records["status"] != "dropped"]
    assert (sent["sent_ns"] >= sent["scheduled_ns"]).all() and (sent["done_ns"] >= sent["sent_ns"]).all()
    assert most_in_flight(sent) > 1  # open loop: not one request at a time


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("server", SERVERS)
def test_every_server_and_protocol_produces_ok_records(
    settings_for, tmp_path, server: str, protocol: str
) -> None:
    summary = run_load(
        settings_for(server, protocol, rate=50.0, duration_s=1.5, batch=2), tmp_path, progress=False
    )
    records = read_run(tmp_path).records
    assert len(records) > 0
    assert set(records["status"]) == {"ok"}, records[records["status"] != "ok"]["error"].head().tolist()
    assert set(records["server"]) == {server} and set(records["protocol"]) == {protocol}
    assert (records["batch"] == 2).all()
    assert (records["bytes_in"] > 0).all() and (records["bytes_out"] > 0).all()
    assert (records["done_ns"] >= records["sent_ns"]).all() and (
        records["sent_ns"] >= records["scheduled_ns"]
    ).all()
    assert summary.counts["ok"] > 0 and summary.server == server and summary.protocol == protocol
    assert (tmp_path / "load.json").exists() and (tmp_path / "payloads.json").exists()


def test_two_processes_together_achieve_the_total_rate(settings_for, tmp_path) -> None:
    rate = 300.0
    summary = run_load(
        settings_for("torchserve", "grpc", rate=rate, duration_s=2.0, processes=2), tmp_path, progress=False
    )
    run = read_run(tmp_path)
    assert sorted(set(run.records["stream"])) == [0, 1]
    per_stream = run.records.groupby("stream").size()
    assert per_stream.min() > 0.35 * len(run.records)  # each takes about half
    assert summary.achieved_arrival_rate == pytest.approx(rate, rel=poisson_rel_tolerance(rate, 2.0))
    assert sum(summary.counts.values()) == int(run.records["in_window"].sum())  # every arrival a record
    assert summary.counts["error"] == summary.counts["timeout"] == 0


def test_a_wrong_model_name_gives_error_records_not_a_crash(settings_for, tmp_path) -> None:
    run_load(
        settings_for("torchserve", "rest-json", rate=50.0, duration_s=1.0, model_name="no-such-model"),
        tmp_path,
        progress=False,
    )
    records = read_run(tmp_path).records
    assert len(records) > 0
    assert set(records["status"]) == {"error"}
    assert set(records["code"]) == {404}
    assert records["error"].str.len().min() > 0


def test_closed_loop_keeps_concurrency_requests_in_flight_back_to_back(settings_for, tmp_path) -> None:
    summary = run_load(
        settings_for("torchserve", "rest-binary", concurrency=3, duration_s=1.5), tmp_path, progress=False
    )
    records = read_run(tmp_path).records
    assert (records["scheduled_ns"] == records["sent_ns"]).all()  # closed loop: no schedule to be late for
    assert summary.mode == "closed" and summary.counts["ok"] == len(records) > 10
    # never more than 3 outstanding at once
    assert most_in_flight(records) <= 3
