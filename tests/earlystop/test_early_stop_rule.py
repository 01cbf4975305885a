"""The early-stopping rule: stop once the SLO percentile's exact 95 % interval lies within ±f of it.

The judged interval is the one of the reports (`quantile_interval`, nearest rank, order statistics);
requests still in flight count as slower than every finished one, so a backlog keeps it open.
"""

from __future__ import annotations

import numpy as np
import pytest

import analysis.percentiles
from loadtest import EarlyStop, RequestRecord
from loadtest._early_stop import EarlyStopJudge, is_tight, judge
from loadtest._percentiles import quantile_interval

MS = 1_000_000


def uniform(low_ms: float, high_ms: float, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low_ms, high_ms, n)


def long_tail(n: int, seed: int = 0) -> np.ndarray:
    """97 % of requests at ~1 ms, 3 % spread log-uniformly over 1..1000 ms: the p99 is in the tail."""
    rng = np.random.default_rng(seed)
    fast = rng.uniform(0.9, 1.1, n)
    slow = np.exp(rng.uniform(0.0, np.log(1000.0), n))
    return np.where(rng.random(n) < 0.03, slow, fast)


@pytest.mark.parametrize(
    ("case", "latencies_ms", "in_flight", "within", "tight"),
    [
        ("narrow spread, many samples", uniform(10, 11, 5000), 0, 0.10, True),
        ("narrow spread, exactly the minimum for p99 (368)", uniform(10, 11, 368), 0, 0.10, True),
        ("one sample short of the p99 minimum", uniform(10, 11, 367), 0, 0.10, False),
        ("a long tail around the p99", long_tail(2000), 0, 0.10, False),
        ("a long tail, but a lax rule (±99 %) still cannot hold it", long_tail(2000), 0, 0.99, False),
        ("narrow spread, but 1 % of the requests still in flight", uniform(10, 11, 5000), 60, 0.10, False),
        ("narrow spread, one request in flight among 5000", uniform(10, 11, 5000), 1, 0.10, True),
        ("uniform 10..20 ms: p99 interval ~[19.7, 20] within ±5 %", uniform(10, 20, 5000), 0, 0.05, True),
        ("exponential, 2000 samples: p99 interval ~[4.2, 5.2] x mean, not within ±5 %",
         np.random.default_rng(1).exponential(10.0, 2000), 0, 0.05, False),
        ("exponential, 2000 samples: within ±25 %", np.random.default_rng(1).exponential(10.0, 2000), 0, 0.25,
         True),
        ("no ok request at all", np.array([]), 0, 0.10, False),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_rule_stops_only_when_the_interval_is_within_the_fraction(
    case: str, latencies_ms: np.ndarray, in_flight: int, within: float, tight: bool
) -> None:
    interval = judge(latencies_ms, in_flight, 99.0)
    assert is_tight(interval, within) is tight
    if tight:
        assert interval.value is not None and interval.low is not None and interval.high is not None
        assert interval.value * (1 - within) <= interval.low <= interval.value <= interval.high
        assert interval.high <= interval.value * (1 + within)


def test_the_judged_interval_is_the_reports_interval() -> None:
    """One interval code: the reports' `analysis.percentiles.quantile_interval` is the generator's."""
    assert analysis.percentiles.quantile_interval is quantile_interval
    samples = long_tail(3000, seed=3)
    assert judge(samples, 0, 99.0) == quantile_interval(samples, 99.0)


def test_the_partial_sort_picks_the_same_order_statistics_as_a_full_sort() -> None:
    samples = long_tail(4000, seed=5)
    partial = quantile_interval(samples, 99.0)
    full = quantile_interval(np.sort(samples), 99.0, presorted=True)
    assert partial == full
    ordered = np.sort(samples)
    assert partial.low_rank is not None and partial.high_rank is not None
    assert (partial.low, partial.high) == (ordered[partial.low_rank - 1], ordered[partial.high_rank - 1])


def test_requests_in_flight_count_as_slower_than_every_finished_one() -> None:
    """30 of 3000 still out is the top 1 %: the p99's upper end is one of them, so it is open."""
    interval = judge(uniform(10, 11, 2970), 30, 99.0)
    assert interval.n == 3000
    assert interval.high == float("inf")
    assert not is_tight(interval, 0.5)


def record(seq: int, scheduled_ms: float, latency_ms: float, status: str = "ok") -> RequestRecord:
    scheduled = round(scheduled_ms * MS)
    done = scheduled + round(latency_ms * MS)
    return RequestRecord(seq=seq, stream=0, server="torchserve", protocol="grpc", batch=1,
                         scheduled_ns=scheduled, sent_ns=scheduled, done_ns=done,
                         bytes_out=1, bytes_in=1, status=status, code=0, error=None)  # type: ignore[arg-type]


def test_the_judge_uses_ok_requests_scheduled_in_the_window_only() -> None:
    """Warm-up requests and failures are not latencies of the window: 400 ok ones at 10 ms decide."""
    rule = EarlyStop(interval_within=0.10, max_duration_s=10)
    judge_ = EarlyStopJudge(rule, measure_start_ns=1000 * MS, in_flight=lambda: [])
    for k in range(200):  # warm-up: slow, must not count
        judge_.observe(record(k, scheduled_ms=float(k), latency_ms=500.0))
    for k in range(400):
        judge_.observe(record(1000 + k, scheduled_ms=1000.0 + k, latency_ms=10.0))
        judge_.observe(record(2000 + k, scheduled_ms=1000.0 + k, latency_ms=900.0, status="error"))
    assert judge_(now_ns=2000 * MS) is True
    assert judge_.checks == 1
    assert judge_.last is not None and judge_.last.n == 400 and judge_.last.value_ms == 10.0


def test_requests_in_flight_longer_than_any_ok_latency_keep_the_upper_end_open() -> None:
    """50 requests out since 0..49 ms, at 2000 ms: older than the longest ok latency (10 ms), so surely
    slower than every finished one; 1 % of 1050 is 10.5, so the p99's upper end is one of them."""
    rule = EarlyStop(interval_within=0.10, max_duration_s=10)
    judge_ = EarlyStopJudge(rule, measure_start_ns=0, in_flight=lambda: range(0, 50 * MS, MS))
    for k in range(1000):
        judge_.observe(record(k, scheduled_ms=float(k), latency_ms=10.0))
    assert judge_(now_ns=2000 * MS) is False
    assert judge_(now_ns=2000 * MS) is False
    assert judge_.checks == 2
    assert judge_.last is not None
    assert (judge_.last.in_flight, judge_.last.n, judge_.last.high_ms) == (50, 1050, None)
    outcome = judge_.outcome(min_duration_s=5, measured_s=10.0, ended_early=False, interrupted=False)
    assert (outcome.reason, outcome.checks, outcome.max_duration_s) == ("cap", 2, 10)
    assert "ran to the cap" in outcome.describe()


def test_requests_scheduled_after_the_cutoff_wait_for_a_later_check() -> None:
    """At 1005 ms with a longest ok latency of 10 ms, the cutoff is 995 ms: the 100 requests in flight
    since 996..1004 ms are too young to judge and are left out with everything scheduled after 995 ms,
    so the rule decides on the 996 ok requests before it: tight."""
    rule = EarlyStop(interval_within=0.10, max_duration_s=10)
    judge_ = EarlyStopJudge(rule, measure_start_ns=0,
                            in_flight=lambda: [996 * MS + k * MS // 12 for k in range(100)])
    for k in range(1000):
        judge_.observe(record(k, scheduled_ms=float(k), latency_ms=10.0))
    assert judge_(now_ns=1005 * MS) is True
    assert judge_.last is not None and (judge_.last.n, judge_.last.in_flight) == (995, 0)


def test_correlated_latencies_keep_the_rule_waiting() -> None:
    """5,000 requests of a simulated M/M/1 queue at 80 % utilisation (busy periods: each slow moment
    delays everything behind it) are worth a few dozen independent ones. Told when each was scheduled,
    the judge (the reports' interval for a window) leaves the p99's upper end open; taken as independent,
    the same latencies would look tight within ±50 % and stop the cell on a p99 it does not know."""
    from analysis.queues import Queue

    times_s, latencies_s = next(Queue.at("M/M/1", 500.0, 0.8).windows(10.0, 1, seed=8))
    latencies_ms = latencies_s * 1000
    dependent = judge(latencies_ms, 0, 99.0, scheduled_ns=times_s * 1e9, window_ns=(0, 10 * 10**9))
    assert dependent.correlation is not None and dependent.effective_n < 368
    assert dependent.high is None and not is_tight(dependent, 0.5)
    assert is_tight(judge(latencies_ms, 0, 99.0), 0.5)
