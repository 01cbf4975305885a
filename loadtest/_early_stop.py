"""Early stopping: a cell runs until its SLO percentile is known precisely enough, or a cap.

Like MLPerf LoadGen (enough queries for the percentile) and perf_analyzer (measure until stable): a
run with `early_stop` lasts at least `duration_s`; from then on, about once per second, the engine
asks `EarlyStopJudge` whether the 95 % interval of the percentile of the `ok` latencies so far lies
within ±`interval_within` of the estimate (both ends). The interval is the reports' one for a window
of latencies (`_percentiles.window_quantile_interval`: the order-statistic interval on the sample's
effective size, the correlation between requests measured over time slices of the span judged), so a
cell whose requests come in busy periods runs longer, as it must to know its percentile. Yes: the
schedule ends at that instant (no new arrival, in-flight requests finish as at any end). Otherwise it
ends at `max_duration_s`.

The sample at a check is every request scheduled in the measuring window before a cutoff, `now -
M` with M the largest ok latency seen so far: its `ok` latencies, plus each of its requests still in
flight counted as slower than all of them. That is exact, not a guess: such a request has waited
longer than M already. Requests scheduled after the cutoff wait for a later check (choosing by
schedule time never biases the latencies), so a fresh request is never mistaken for a fast or a
slow one, and a backlog of old ones keeps the interval's upper end open: a saturated cell runs to
the cap instead of stopping on its fast half. Failures (error, timeout, dropped) are not latencies:
they count against the SLO in analysis.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable
from functools import partial
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from ._percentiles import CONFIDENCE, QuantileInterval, quantile_interval, window_quantile_interval
from ._schema import RequestRecord

StopReason = Literal["rule", "cap", "interrupted"]


class EarlyStop(BaseModel):
    """The stopping rule of a load run (`LoadSettings.early_stop`); the matrix's `early_stop` fills it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percentile: float = Field(
        default=99.0, gt=0, lt=100, description="the percentile judged (the matrix's SLO percentile)"
    )
    interval_within: float = Field(
        gt=0, lt=1,
        description="stop once both ends of the percentile's 95 % interval are within this fraction "
        "of the estimate (0.1: within ±10 %)",
    )
    max_duration_s: float = Field(gt=0, description="the cap on the measuring window, seconds")

    def describe(self, min_duration_s: float) -> str:
        """The rule in words, as the report states it."""
        return (
            f"ran >= {min_duration_s:g} s and until the p{self.percentile:g}'s {CONFIDENCE:.0%} interval "
            f"was within ±{self.interval_within:.0%} of it, at most {self.max_duration_s:g} s"
        )


class StopInterval(BaseModel):
    """The judged percentile at a check: estimate and 95 % interval, ms (None: that end does not exist)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p: float
    n: int  # samples judged: ok latencies plus the requests still in flight before the cutoff
    in_flight: int  # of them, counted as slower than every finished one (they are)
    value_ms: float | None
    low_ms: float | None
    high_ms: float | None


class EarlyStopOutcome(BaseModel):
    """What the rule did in one run (load.json's `early_stop`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percentile: float
    interval_within: float
    min_duration_s: float
    max_duration_s: float
    measured_s: float  # the measuring window the run really had
    reason: StopReason  # rule: the interval was tight; cap: max_duration_s; interrupted: a signal
    checks: int  # how many times the rule was asked
    at_stop: StopInterval | None  # the last check's interval (None: never checked)

    def describe(self) -> str:
        """`40.0 s, stopped by the rule (p99 12.1 ms [11.5, 12.9])` for reports and consoles."""
        why = {"rule": "stopped by the rule", "cap": "ran to the cap", "interrupted": "interrupted"}
        text = f"{self.measured_s:.1f} s, {why[self.reason]}"
        at = self.at_stop
        if at is not None and at.value_ms is not None:
            low = "n/a" if at.low_ms is None else f"{at.low_ms:.1f}"
            high = "open" if at.high_ms is None else f"{at.high_ms:.1f}"
            text += f" (p{at.p:g} {at.value_ms:.1f} ms [{low}, {high}] over {at.n})"
        return text


def is_tight(interval: QuantileInterval, within: float) -> bool:
    """Both ends of the interval exist, are finite and lie within ±`within` of the estimate."""
    if not interval.enough or interval.value is None or interval.low is None or interval.high is None:
        return False
    if not (math.isfinite(interval.high) and math.isfinite(interval.value)):
        return False
    return interval.low >= interval.value * (1 - within) and interval.high <= interval.value * (1 + within)


def judge(
    latencies_ms: npt.ArrayLike,
    in_flight: int,
    percentile: float,
    *,
    scheduled_ns: npt.ArrayLike | None = None,
    in_flight_ns: npt.ArrayLike | None = None,
    window_ns: tuple[int, int] | None = None,
) -> QuantileInterval:
    """The percentile's interval over finished ok latencies plus `in_flight` slower ones.

    With the requests' scheduled instants (`scheduled_ns` for the latencies, `in_flight_ns` for the
    ones still out) and the span they were drawn from (`window_ns`), the interval is the one for
    dependent samples (`window_quantile_interval`, as in the reports): a busy period widens it. Without
    them, the exact interval for independent samples."""
    samples = np.asarray(latencies_ms, dtype=np.float64).ravel()
    if in_flight > 0:
        samples = np.concatenate([samples, np.full(in_flight, np.inf)])
    if scheduled_ns is None or window_ns is None:
        return quantile_interval(samples, percentile)
    times = np.asarray(scheduled_ns, dtype=np.float64).ravel()
    if in_flight > 0:
        out = np.asarray(in_flight_ns if in_flight_ns is not None else [], dtype=np.float64).ravel()
        times = np.concatenate([times, out if out.size == in_flight else np.full(in_flight, window_ns[1])])
    return window_quantile_interval(samples, times, window_ns, percentile)


def stop_interval(interval: QuantileInterval, in_flight: int) -> StopInterval:
    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    return StopInterval(
        p=interval.p,
        n=interval.n,
        in_flight=in_flight,
        value_ms=finite(interval.value),
        low_ms=finite(interval.low),
        high_ms=finite(interval.high),
    )


class EarlyStopJudge:
    """The engine's stop predicate for one load process: collects latencies, judges when asked.

    `observe` goes into the records sink (cheap: two appends per ok request in the window); calling the
    judge (`judge(now_ns)`) builds the sample (see the module docstring) and decides. `in_flight`
    returns the scheduled instants of the requests still in flight (`Engine.in_flight_scheduled`).
    `offload` runs the arithmetic elsewhere (e.g. a thread pool, so a partial
    sort of a large sample never holds up the schedule); None: inline.
    """

    def __init__(
        self,
        rule: EarlyStop,
        *,
        measure_start_ns: int,
        in_flight: Callable[[], Iterable[int]],
        offload: Callable[..., QuantileInterval] | None = None,
    ) -> None:
        self.rule = rule
        self._from_ns = measure_start_ns
        self._in_flight = in_flight
        self._offload = offload
        self._scheduled_ns = array("q")
        self._latencies_ns = array("q")
        self._longest_ns = 0
        self.checks = 0
        self.last: StopInterval | None = None

    def observe(self, record: RequestRecord) -> None:
        if record.status == "ok" and record.scheduled_ns >= self._from_ns:
            latency = record.latency_ns
            self._scheduled_ns.append(record.scheduled_ns)
            self._latencies_ns.append(latency)
            self._longest_ns = max(self._longest_ns, latency)

    def __call__(self, now_ns: int) -> bool:
        cutoff = now_ns - self._longest_ns
        scheduled = np.frombuffer(self._scheduled_ns, dtype=np.int64)
        judged = scheduled < cutoff
        latencies_ms = np.frombuffer(self._latencies_ns, dtype=np.int64)[judged] / 1e6
        scheduled_ns = scheduled[judged].copy()
        del scheduled, judged  # no view may outlive the call: the arrays grow
        out = [at for at in self._in_flight() if self._from_ns <= at < cutoff]
        in_flight = len(out)
        timed = partial(judge, scheduled_ns=scheduled_ns, in_flight_ns=np.asarray(out, dtype=np.int64),
                        window_ns=(self._from_ns, max(cutoff, self._from_ns + 1)))
        if self._offload is None:
            interval = timed(latencies_ms, in_flight, self.rule.percentile)
        else:
            interval = self._offload(timed, (latencies_ms, in_flight, self.rule.percentile))
        self.checks += 1
        self.last = stop_interval(interval, in_flight)
        return is_tight(interval, self.rule.interval_within)

    def outcome(
        self, *, min_duration_s: float, measured_s: float, ended_early: bool, interrupted: bool
    ) -> EarlyStopOutcome:
        reason: StopReason = "interrupted" if interrupted else ("rule" if ended_early else "cap")
        return EarlyStopOutcome(
            percentile=self.rule.percentile,
            interval_within=self.rule.interval_within,
            min_duration_s=min_duration_s,
            max_duration_s=max(self.rule.max_duration_s, min_duration_s),
            measured_s=measured_s,
            reason=reason,
            checks=self.checks,
            at_stop=self.last,
        )
