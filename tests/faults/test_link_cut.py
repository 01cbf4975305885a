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
from hostile_link import FaultWindow, later, link_cut, run_started

from loadtest import read_run

# alone: the cut must land while the run is in its window (beside a busy worker, run 2 of an earlier
# layout saw answers in the planned 'during' phase; the phases now come from the cut's own times)
pytestmark = [pytest.mark.servers, pytest.mark.alone]

TIMEOUT_S = 1.0
DURATION_S = 8.0  # warm-up included: cut from ~2 s to ~4 s, answered again well before the end
WARMUP_S = 0.5


def statuses_by_phase(out: Path, cut: FaultWindow) -> dict[str, set[str]]:
    """The statuses of requests scheduled before, inside, and well after the cut as it happened (a
    timeout's width of margin where a request may straddle the change: one sent before the cut may time
    out in it, one sent late in the cut may be answered once the link is back)."""
    records = read_run(out).records
    t, status = records["scheduled_ns"], records["status"]
    phases = {
        "before": t < cut.start_ns - TIMEOUT_S * 1e9,
        "during": (t > cut.start_ns) & (t < cut.end_ns - TIMEOUT_S * 1e9),
        "after": t > cut.end_ns + 2 * TIMEOUT_S * 1e9,
    }
    return {name: set(status[mask]) for name, mask in phases.items()}


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_cut_and_restored_link_gives_timeouts_during_the_cut_and_answers_after_it(
    fault_host: FaultHost, protocol: str, tmp_path: Path
) -> None:
    out = tmp_path / "cut"
    cut = lambda: link_cut(fault_host.host)  # noqa: E731
    # the records file appears ~0.2 s before the first arrival; cut from ~2 s to ~4 s of the schedule
    with later(cut, after_s=2.0, lasting_s=2.0, since=run_started(out)) as window:
        run = load(fault_host.load_args(protocol), out, rate=30, duration_s=DURATION_S - WARMUP_S,
                   warmup_s=WARMUP_S, timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert run.audit.ok_beyond_timeout == 0
    assert window.start_ns and window.end_ns, "the cut never happened"
    phases = statuses_by_phase(out, window)
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
