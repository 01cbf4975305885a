"""A bandwidth limit on the link (tbf on both ends of the veth pair).

Within the limit: every answer is a latency that includes sending the body through the link, so no
request's service time is shorter than its body's bytes at the link's rate (less tbf's burst).
Far beyond it (the offered bytes many times the link): requests queue in the link and time out;
the run still ends on time and every request has exactly one record, a timeout or an answer; once
the limit is lifted, requests are answered again (no connection or pool slot stays stuck).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_host import FaultHost
from fault_runs import load
from hostile_link import bandwidth_limit, burst_bytes, later, run_started

from loadtest import read_run

# alone: the answers after the flood must come back within the timeout; starved under SCHED_IDLE beside
# busy lanes, 14 of them timed out or were dropped
pytestmark = [pytest.mark.servers, pytest.mark.alone]

LINK_KBIT = 2000
TIMEOUT_S = 1.0


def test_each_answer_includes_the_time_its_body_takes_through_the_link(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    with bandwidth_limit(fault_host.host, LINK_KBIT):  # rest-json: its ~11 kB bodies take ~40 ms
        run = load(fault_host.load_args("rest-json"), tmp_path / "shaped", rate=8, duration_s=3, timeout_s=5)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert set(run.audit.statuses) == {"ok"}, run.audit.errors
    records = read_run(run.out).records
    bits = (records["bytes_out"] - burst_bytes(LINK_KBIT)).clip(lower=0) * 8
    floor_ms = bits / LINK_KBIT  # bits / (kbit/s) = ms
    assert (records["service_ms"] >= floor_ms).all(), records.loc[records["service_ms"] < floor_ms].head()
    assert floor_ms.min() > 20  # the bodies are large enough for the link to show


def test_far_beyond_the_link_requests_time_out_none_is_lost_and_answers_return_when_it_is_lifted(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    # rest-json bodies of 32 instances: ~350 kB each, 20/s is ~56 Mbit/s offered to a 2 Mbit/s link,
    # for the first 3 s of the schedule; then the link is whole again
    out = tmp_path / "flooded"
    shaped = lambda: bandwidth_limit(fault_host.host, LINK_KBIT)  # noqa: E731
    with later(shaped, after_s=0.0, lasting_s=3.2, since=run_started(out)):
        run = load(fault_host.load_args("rest-json"), out, rate=20, duration_s=5.5, timeout_s=TIMEOUT_S,
                   extra=("--batch", "32", "--max-in-flight", "16"))
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert run.audit.statuses["timeout"] > 0, run.audit.statuses
    assert set(run.audit.statuses) <= {"ok", "timeout", "error", "dropped"}
    assert run.audit.ok_beyond_timeout == 0
    records = read_run(out).records
    t = (records["scheduled_ns"] - records["scheduled_ns"].min()) / 1e9
    after = records.loc[t > 3.0 + 2 * TIMEOUT_S, "status"]
    assert len(after) > 0 and set(after) == {"ok"}, after.value_counts()  # nothing stuck from the flood
    assert run.wall_s < 6 + TIMEOUT_S + 30  # no hang
