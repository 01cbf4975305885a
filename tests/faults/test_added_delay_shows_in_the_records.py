"""An added network delay of D shows in the records as D: the median latency through a delaying proxy
minus the median through the same proxy without delay is D, within 1 ms plus the interval of that
difference; with jitter J no answer comes back sooner than D - J. Every request has its one record.

The interval is the one the reports use: each run's median with its 95 % interval for dependent
requests (a queue's latencies are correlated: intervals for independent ones were too narrow and this
test failed on shifts of 23-36 ms), and the runs without delay before and after the delayed one
bracket it, so a drift of TorchServe's own latency between runs (its median moved 10 -> 8 ms between
the two in one run here) widens the difference's interval instead of failing it.

The proxy (delay_proxy.py, tested on its own) runs on the namespace host in front of TorchServe and
delays the server's answers; both runs go through it, so only the delay differs between them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_host import FaultHost
from fault_runs import load
from hostile_link import delay_proxy

from loadtest import read_run
from loadtest._percentiles import QuantileInterval, window_quantile_interval
from loadtest._schema import run_window

# alone: the median shift must match the delay within 1 ms. Beside make test's lanes under SCHED_IDLE
# only, the delayed runs' medians were 46-57 ms, not ~39 (5 runs of 5 failed): the servers those lanes
# start run in sessions of their own, where SCHED_IDLE does not yield to us (tests/idle_lane.py). Beside
# the lanes in their idle cgroup it passes.
pytestmark = [pytest.mark.servers, pytest.mark.alone]

DELAY_MS = 30.0
JITTER_MS = 5.0
SLACK_MS = 1.0  # the tolerance on top of the interval


def latencies_through_proxy(fault_host: FaultHost, protocol: str, out: Path, delay_ms: float,
                            jitter_ms: float) -> list[float]:
    with delay_proxy(fault_host.host, fault_host.port(protocol), delay_ms, jitter_ms=jitter_ms) as proxy:
        # 5 s at 50/s: ~250 requests, enough for a median with both ends even when a stall correlates
        # them (2.5 s gave 115 worth 6 independent ones at f = 20: the upper end withheld as too few)
        run = load(fault_host.load_args(protocol, port=proxy.port), out, rate=50, duration_s=5, timeout_s=5)
    assert run.returncode == 0, run.output
    assert run.audit.complete, run.audit
    assert set(run.audit.statuses) == {"ok"}, run.audit.errors
    return run.audit.ok_latencies_ms


def median_interval(out: Path) -> QuantileInterval:
    """The run's median latency in its measuring window, with its interval for dependent requests."""
    run = read_run(out)
    measured = run.records[run.records["in_window"] & (run.records["status"] == "ok")]
    interval = window_quantile_interval(measured["latency_ms"], measured["scheduled_ns"],
                                        run_window(run.headers), 50)
    assert interval.low is not None and interval.high is not None, interval
    return interval


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_delay_of_d_adds_d_to_the_median_latency(
    fault_host: FaultHost, protocol: str, tmp_path: Path
) -> None:
    # without, with, without: the runs without delay bracket the one with it, so a drift of the
    # server's own latency (2 shared cores) falls on both sides of the comparison
    runs = {name: tmp_path / name for name in ("before", "delayed", "after")}
    latencies_through_proxy(fault_host, protocol, runs["before"], 0.0, 0.0)
    delayed = latencies_through_proxy(fault_host, protocol, runs["delayed"], DELAY_MS, JITTER_MS)
    latencies_through_proxy(fault_host, protocol, runs["after"], 0.0, 0.0)

    before, with_delay, after = (median_interval(path) for path in runs.values())
    low = with_delay.low - max(before.high, after.high)  # type: ignore[operator, type-var]
    high = with_delay.high - min(before.low, after.low)  # type: ignore[operator, type-var]
    shifts = [with_delay.value - base.value for base in (before, after)]  # type: ignore[operator]
    assert low - SLACK_MS <= DELAY_MS <= high + SLACK_MS, (
        f"median shifts {shifts[0]:.2f} and {shifts[1]:.2f} ms (against the runs before and after), "
        f"interval [{low:.2f}, {high:.2f}] ms, added {DELAY_MS} ms")
    assert min(delayed) >= DELAY_MS - JITTER_MS  # no answer overtakes its delay
