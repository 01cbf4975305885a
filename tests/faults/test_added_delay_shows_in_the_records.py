"""An added network delay of D shows in the records as D: the median latency through a delaying proxy
minus the median through the same proxy without delay is D, within 1 ms plus the interval of that
difference; with jitter J no answer comes back sooner than D - J. Every request has its one record.

The proxy (delay_proxy.py, tested on its own) runs on the namespace host in front of TorchServe and
delays the server's answers; both runs go through it, so only the delay differs between them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_host import FaultHost
from fault_runs import load
from hostile_link import delay_proxy

from loadtest._percentiles import quantile_interval

# alone: the median shift must match the delay within 1 ms
pytestmark = [pytest.mark.servers, pytest.mark.alone]

DELAY_MS = 30.0
JITTER_MS = 5.0
SLACK_MS = 1.0  # the tolerance on top of the interval


def latencies_through_proxy(fault_host: FaultHost, protocol: str, out: Path, delay_ms: float,
                            jitter_ms: float) -> list[float]:
    with delay_proxy(fault_host.host, fault_host.port(protocol), delay_ms, jitter_ms=jitter_ms) as proxy:
        run = load(fault_host.load_args(protocol, port=proxy.port), out, rate=50, duration_s=2.5, timeout_s=5)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert set(run.audit.statuses) == {"ok"}, run.audit.errors
    return run.audit.ok_latencies_ms


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_delay_of_d_adds_d_to_the_median_latency(
    fault_host: FaultHost, protocol: str, tmp_path: Path
) -> None:
    # without, with, without: the runs without delay bracket the one with it, so a drift of the
    # server's own latency (2 shared cores) falls on both sides of the comparison
    base = latencies_through_proxy(fault_host, protocol, tmp_path / "before", 0.0, 0.0)
    delayed = latencies_through_proxy(fault_host, protocol, tmp_path / "delayed", DELAY_MS, JITTER_MS)
    base += latencies_through_proxy(fault_host, protocol, tmp_path / "after", 0.0, 0.0)

    without, with_delay = quantile_interval(base, 50), quantile_interval(delayed, 50)
    assert None not in (without.value, without.low, without.high, with_delay.value, with_delay.low,
                        with_delay.high)
    low = with_delay.low - without.high  # type: ignore[operator]
    high = with_delay.high - without.low  # type: ignore[operator]
    shift = with_delay.value - without.value  # type: ignore[operator]
    assert low - SLACK_MS <= DELAY_MS <= high + SLACK_MS, (
        f"median shift {shift:.2f} ms, interval [{low:.2f}, {high:.2f}] ms, added {DELAY_MS} ms")
    assert min(delayed) >= DELAY_MS - JITTER_MS  # no answer overtakes its delay
