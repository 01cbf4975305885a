"""The link to the server host is cut mid-run (`ip link set` down on the namespace's end: packets vanish
silently, no reset, as with a pulled cable).

The run neither hangs nor loses a record: every request has exactly one record; requests sent into
the cut are timeouts or connection errors, never latencies; the run ends one timeout after its
window. When the link comes back within the run, requests are answered again on the same
connections and pools.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_host import FaultHost
from fault_runs import load
from hostile_link import later, link_cut, run_started

from loadtest import read_run

# alone: the phases assume the cut lands within 0.2 s of its plan (beside a busy worker, run 2 of this
# layout saw answers in the 'during' phase)
pytestmark = [pytest.mark.servers, pytest.mark.alone]

TIMEOUT_S = 1.0
DURATION_S = 8.0  # warm-up included: cut from ~2 s to ~4 s, answered again well before the end
WARMUP_S = 0.5


def statuses_by_phase(out: Path, cut_from_s: float, cut_until_s: float) -> dict[str, set[str]]:
    """The statuses of requests scheduled before, well inside, and well after the cut (seconds into the
    schedule; a timeout's width of margin on each side, where a request may straddle the change)."""
    records = read_run(out).records
    t = (records["scheduled_ns"] - records["scheduled_ns"].min()) / 1e9
    phases = {
        "before": t < cut_from_s - TIMEOUT_S,
        "during": (t > cut_from_s + 0.2) & (t < cut_until_s - TIMEOUT_S),
        "after": t > cut_until_s + 2 * TIMEOUT_S,
    }
    return {name: set(records.loc[mask, "status"]) for name, mask in phases.items()}


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_cut_and_restored_link_gives_timeouts_during_the_cut_and_answers_after_it(
    fault_host: FaultHost, protocol: str, tmp_path: Path
) -> None:
    out = tmp_path / "cut"
    cut = lambda: link_cut(fault_host.host)  # noqa: E731
    # the records file appears ~0.2 s before the first arrival; cut from ~2 s to ~4 s of the schedule
    with later(cut, after_s=2.0, lasting_s=2.0, since=run_started(out)):
        run = load(fault_host.load_args(protocol), out, rate=30, duration_s=DURATION_S - WARMUP_S,
                   warmup_s=WARMUP_S, timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert run.audit.ok_beyond_timeout == 0
    phases = statuses_by_phase(out, cut_from_s=1.8, cut_until_s=3.8)
    assert phases["before"] == {"ok"}, phases
    assert phases["during"] and phases["during"] <= {"timeout", "error"}, phases  # never a latency
    assert "ok" in phases["after"], phases  # the link is back: answers again
    assert run.wall_s < DURATION_S + TIMEOUT_S + 30  # no hang


def test_a_link_cut_for_good_ends_the_run_on_time_with_every_request_recorded(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    out = tmp_path / "cut-for-good"
    cut = lambda: link_cut(fault_host.host)  # noqa: E731
    with later(cut, after_s=1.0, since=run_started(out)):  # until the run has ended
        run = load(fault_host.load_args("grpc"), out, rate=30, duration_s=2.5, warmup_s=WARMUP_S,
                   timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert run.audit.statuses["timeout"] + run.audit.statuses["error"] > 0, run.audit.statuses
    assert run.audit.ok_beyond_timeout == 0
    assert run.wall_s < 3.0 + TIMEOUT_S + 30  # no hang on the dead connection
