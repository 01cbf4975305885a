"""Packet loss on the link to the server host (iptables `statistic` drops inside the namespace).

Moderate loss: TCP retransmits, so every request still gets its answer, a late one: the run completes
and each request has exactly one record. Lost answers (every packet the server sends is dropped, from
a second into the run): the server did the work, but no request whose answer was lost may show as a
latency: each is a timeout record, and no `ok` record is older than the timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_host import FaultHost
from fault_runs import load
from hostile_link import later, packet_loss, run_started

pytestmark = [pytest.mark.servers, pytest.mark.needs("iptables")]

TIMEOUT_S = 2.0


def test_under_five_percent_loss_every_request_has_one_record_and_answers_stay_answers(
    fault_host: FaultHost, tmp_path: Path
) -> None:
    with packet_loss(fault_host.host, 0.05):  # both protocols, and heavier loss: benchmarks/reliability.py
        run = load(fault_host.load_args("rest-json"), tmp_path / "loss", rate=30, duration_s=3,
                   timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert run.audit.statuses["ok"] > 0
    assert set(run.audit.statuses) <= {"ok", "timeout", "error"}
    assert run.audit.ok_beyond_timeout == 0


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_requests_whose_answers_are_lost_are_timeouts_never_latencies(
    fault_host: FaultHost, protocol: str, tmp_path: Path
) -> None:
    lose_answers = lambda: packet_loss(fault_host.host, 1.0, direction="responses")  # noqa: E731
    out = tmp_path / "lost"
    with later(lose_answers, after_s=1.0, since=run_started(out)):  # a second into the schedule
        run = load(fault_host.load_args(protocol), out, rate=30, duration_s=3, timeout_s=TIMEOUT_S)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert run.audit.statuses["ok"] > 0  # before the answers were lost
    assert run.audit.statuses["timeout"] > 0, run.audit.statuses  # after
    assert set(run.audit.statuses) <= {"ok", "timeout", "error"}
    assert run.audit.ok_beyond_timeout == 0  # an answer older than the timeout was never a latency
    assert run.wall_s < 3.5 + TIMEOUT_S + 30  # no hang: window, one timeout, start-up and drain
