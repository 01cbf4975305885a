"""Aggregate repetitions of one cell: mean and spread of p99 latency and throughput, and their intervals.

Spread is reported two ways: min..max over repetitions, and a two-sided 95 % confidence interval
of the mean from Student's t distribution (mean +- t(0.975, n-1) * s / sqrt(n)); the interval
needs n >= 2 and is None otherwise. A percentile's spread only takes repetitions with enough
requests for that percentile (`percentiles.min_samples`).

Each cell's `p99`, `slo_estimate` and `throughput` are `Estimate`s: with >= 2 repetitions (that have
enough requests) the Student-t interval over repetitions; with one, that run's exact order-statistic
interval (percentiles) or its batch-means interval (throughput); with too few requests, no value and
a note saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis.intervals import MISSING, ORDER_STATISTIC, Estimate, t_interval, t_method
from analysis.keys import CellKey, GroupKey
from analysis.percentiles import QuantileInterval
from analysis.stats import RunStats, RunSummary, Slo, too_few_note
from inferload_formats import strict_fields


@strict_fields
@dataclass(frozen=True)
class Spread:
    """Mean, min, max and t-based 95 % interval of one quantity across repetitions."""

    n: int
    mean: float | None
    min: float | None
    max: float | None
    ci95_low: float | None
    ci95_high: float | None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread:
        data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
        if data.size == 0:
            return cls(0, None, None, None, None, None)
        low, high = t_interval(data.tolist()) or (None, None)
        return cls(int(data.size), float(data.mean()), float(data.min()), float(data.max()), low, high)


@dataclass(frozen=True)
class CellSummary:
    """One cell over all its repetitions. Only usable repetitions feed the spreads and the SLO check."""

    key: CellKey
    runs: tuple[RunSummary, ...]
    p50_ms: Spread
    p99_ms: Spread
    p999_ms: Spread
    service_p99_ms: Spread
    throughput_rps: Spread
    goodput_rps: Spread
    predictions_per_s: Spread
    error_rate: Spread
    drop_rate: Spread
    met_slo: bool
    usable: bool
    exclusion_reasons: tuple[str, ...]
    p99: Estimate = MISSING
    slo_estimate: Estimate = MISSING  # the SLO percentile (p99 unless the SLO says otherwise)
    throughput: Estimate = MISSING
    # "met" | "missed" | "too few requests" | "excluded" (no usable repetition)
    slo_status: str = "excluded"
    # met and the SLO percentile's upper bound is within the SLO (None when not met or no bound known)
    met_surely: bool | None = None
    missed_surely: bool | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def rate(self) -> float | None:
        return self.key.rate

    @property
    def exclusion_label(self) -> str:
        """A few words on why the cell is excluded; the full reasons are listed once, elsewhere."""
        labels = [r.exclusion_label for r in self.runs if r.exclusion_label]
        return ", ".join(dict.fromkeys(labels)) or "no usable repetition"

    @property
    def slo_misses(self) -> tuple[str, ...]:
        """Why usable repetitions missed the SLO (prefixed by repetition when there are several)."""
        usable = [r for r in self.runs if r.usable]
        return tuple(
            (f"repetition {r.repetition}: " if len(usable) > 1 else "") + miss
            for r in usable
            for miss in r.measured.slo.misses
        )


def percentile_estimate(
    runs: Iterable[RunStats], pick: Callable[[RunStats], QuantileInterval | None]
) -> Estimate:
    """One percentile of a cell: t over repetitions with enough requests, else one run's exact interval."""
    intervals = [i for i in (pick(r) for r in runs) if i is not None and i.n > 0]
    enough = [i for i in intervals if i.enough]
    if len(enough) >= 2:
        values = [i.value for i in enough if i.value is not None]
        low, high = t_interval(values) or (None, None)
        return Estimate(sum(values) / len(values), low, high, t_method(len(values)))
    if enough:
        (one,) = enough
        return Estimate(one.value, one.low, one.high, ORDER_STATISTIC)
    if intervals:
        largest = max(intervals, key=lambda i: i.n)
        return Estimate(None, largest.low, None, ORDER_STATISTIC, too_few_note(largest))
    return Estimate(None, note="no ok responses")


def throughput_estimate(runs: list[RunStats]) -> Estimate:
    if len(runs) >= 2:
        values = [r.throughput_rps for r in runs]
        low, high = t_interval(values) or (None, None)
        return Estimate(sum(values) / len(values), low, high, t_method(len(values)))
    if runs:
        (run,) = runs
        low, high = run.throughput_interval or (None, None)
        return Estimate(run.throughput_rps, low, high, "batch means over 10 slices of the window (one run)")
    return MISSING


def _status(usable: list[RunStats]) -> str:
    statuses = {r.slo.status for r in usable}
    if not usable:
        return "excluded"
    if "missed" in statuses:
        return "missed"
    return "met" if statuses == {"met"} else "too few requests"


def summarize_cells(runs: Iterable[RunSummary], slo: Slo | None = None, *,
                    flagged: Mapping[str, Sequence[str]] | None = None) -> list[CellSummary]:
    """Group runs by `CellKey`. A cell is usable when at least one repetition is; it met the SLO when
    every usable repetition did (one miss is a miss: the verdict stays conservative). With `slo`, a
    met or missed cell also says whether its SLO percentile's interval makes that sure, unless a usable
    repetition ran while the machine was off (`flagged`: cell id -> why, analysis/drift.py): then
    neither is sure, and a note says why."""
    grouped: dict[CellKey, list[RunSummary]] = {}
    for run in runs:
        grouped.setdefault(run.key, []).append(run)
    cells = []
    for key, members in grouped.items():
        members.sort(key=lambda r: r.repetition)
        usable = [r.measured for r in members if r.usable]
        reasons: list[str] = []
        for r in members:
            if not r.usable:
                prefix = f"repetition {r.repetition}: " if len(members) > 1 else ""
                reasons.extend(prefix + reason for reason in r.exclusion_reasons)
        status = _status(usable)
        slo_estimate = percentile_estimate(usable, lambda r: r.slo.interval)
        met_surely = missed_surely = None
        if slo is not None and status == "met" and slo_estimate.high is not None:
            met_surely = slo_estimate.high <= slo.latency_ms
        if slo is not None and status == "missed":
            failed = any(slo.failures_exceed(r.error_rate, r.drop_rate) or r.ok == 0 for r in usable)
            missed_surely = failed or (slo_estimate.low is not None and slo_estimate.low > slo.latency_ms)
        notes = tuple(dict.fromkeys(r.slo.note for r in usable if r.slo.note))
        machine_off = flagged or {}
        off = [(r.cell_id, machine_off[r.cell_id]) for r in members if r.usable and r.cell_id in machine_off]
        if off:
            met_surely = missed_surely = None
            notes += tuple(f"{cell}: the machine was off while it ran ({'; '.join(why)}): no 'surely' rests "
                           "on it" for cell, why in off)
        cells.append(
            CellSummary(
                key=key,
                runs=tuple(members),
                p50_ms=Spread.of(r.latency_ms.reportable(50.0) for r in usable),
                p99_ms=Spread.of(r.latency_ms.reportable(99.0) for r in usable),
                p999_ms=Spread.of(r.latency_ms.reportable(99.9) for r in usable),
                service_p99_ms=Spread.of(r.service_ms.reportable(99.0) for r in usable),
                throughput_rps=Spread.of(r.throughput_rps for r in usable),
                goodput_rps=Spread.of(r.goodput_rps for r in usable),
                predictions_per_s=Spread.of(r.predictions_per_s for r in usable),
                error_rate=Spread.of(r.error_rate for r in usable),
                drop_rate=Spread.of(r.drop_rate for r in usable),
                met_slo=status == "met",
                usable=bool(usable),
                exclusion_reasons=tuple(reasons),
                p99=percentile_estimate(usable, lambda r: r.p99_interval),
                slo_estimate=slo_estimate,
                throughput=throughput_estimate(usable),
                slo_status=status,
                met_surely=met_surely,
                missed_surely=missed_surely,
                notes=notes,
            )
        )
    return sorted(cells, key=_sort_key)


def _sort_key(cell: CellSummary) -> tuple[bool, GroupKey, float, int]:
    """Open-loop sweeps first, then closed-loop cells; within each, by line and load."""
    return (cell.key.mode != "open", cell.key.group, cell.key.rate or 0.0, cell.key.concurrency or 0)
