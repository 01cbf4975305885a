"""Aggregate repetitions of one cell: mean and spread of p99 latency and throughput.

Spread is reported two ways: min..max over repetitions, and a two-sided 95 % confidence interval
of the mean from Student's t distribution (mean +- t(0.975, n-1) * s / sqrt(n)); the interval
needs n >= 2 and is None otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from analysis.stats import RunSummary


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
        mean = float(data.mean())
        low = high = None
        if data.size >= 2:
            half = float(scipy_stats.t.ppf(0.975, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
            low, high = mean - half, mean + half
        return cls(int(data.size), mean, float(data.min()), float(data.max()), low, high)


@dataclass(frozen=True)
class CellKey:
    """What identifies a cell apart from its repetition number."""

    server: str
    protocol: str
    mode: str
    rate: float | None
    concurrency: int | None
    batch: int
    server_config_name: str

    @property
    def group(self) -> GroupKey:
        return GroupKey(self.server, self.protocol, self.server_config_name, self.batch, self.mode)

    def label(self) -> str:
        load = f"{self.rate:g}/s" if self.rate is not None else f"concurrency {self.concurrency}"
        return f"{self.server} {self.protocol} [{self.server_config_name}] batch {self.batch} @ {load}"


@dataclass(frozen=True, order=True)
class GroupKey:
    """A server x protocol x configuration x batch line of a sweep (the unit a verdict is about)."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    mode: str

    def label(self) -> str:
        return f"{self.server} {self.protocol} [{self.server_config_name}] batch {self.batch}"


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
            for miss in r.slo_misses
        )


def cell_key(run: RunSummary) -> CellKey:
    return CellKey(
        run.server, run.protocol, run.mode, run.rate, run.concurrency, run.batch, run.server_config_name
    )


def summarize_cells(runs: Iterable[RunSummary]) -> list[CellSummary]:
    """Group runs by `CellKey`. A cell is usable when at least one repetition is; it met the SLO when
    every usable repetition did (one miss is a miss: the verdict stays conservative)."""
    grouped: dict[CellKey, list[RunSummary]] = {}
    for run in runs:
        grouped.setdefault(cell_key(run), []).append(run)
    cells = []
    for key, members in grouped.items():
        members.sort(key=lambda r: r.repetition)
        usable = [r for r in members if r.usable]
        reasons: list[str] = []
        for r in members:
            if not r.usable:
                prefix = f"repetition {r.repetition}: " if len(members) > 1 else ""
                reasons.extend(prefix + reason for reason in r.exclusion_reasons)
        cells.append(
            CellSummary(
                key=key,
                runs=tuple(members),
                p50_ms=Spread.of(r.latency_ms.p50 for r in usable),
                p99_ms=Spread.of(r.latency_ms.p99 for r in usable),
                p999_ms=Spread.of(r.latency_ms.p999 for r in usable),
                service_p99_ms=Spread.of(r.service_ms.p99 for r in usable),
                throughput_rps=Spread.of(r.throughput_rps for r in usable),
                goodput_rps=Spread.of(r.goodput_rps for r in usable),
                predictions_per_s=Spread.of(r.predictions_per_s for r in usable),
                error_rate=Spread.of(r.error_rate for r in usable),
                drop_rate=Spread.of(r.drop_rate for r in usable),
                met_slo=bool(usable) and all(r.met_slo for r in usable),
                usable=bool(usable),
                exclusion_reasons=tuple(reasons),
            )
        )
    return sorted(cells, key=_sort_key)


def _sort_key(cell: CellSummary) -> tuple[bool, GroupKey, float, int]:
    """Open-loop sweeps first, then closed-loop cells; within each, by line and load."""
    return (cell.key.mode != "open", cell.key.group, cell.key.rate or 0.0, cell.key.concurrency or 0)
