"""Verdicts: which server x protocol x configuration x batch sustains the most load under the SLO.

- Max rate under SLO (per sweep line): walking the usable cells up the offered Poisson rate, the
  highest rate reached before the first cell that missed the SLO. Unusable cells (generator-invalid,
  failed, interrupted) are skipped and listed. A sweep that never missed says so: the true maximum is
  at least the highest rate measured.
- p99 at half that rate: the mean p99 of the usable cell whose rate is nearest to max/2 (ties: the
  lower rate).
- Best configuration: the sweep line with the most predictions/s (throughput x batch) at its max
  rate under SLO.
- Batching matrix (several server configurations of one server x protocol x batch): throughput-optimal
  = highest max rate under SLO; latency-optimal = lowest p99 at a common rate, the highest rate every
  configuration was measured at and sustained within the SLO (or, failing that, the lowest rate all
  were measured at).
- Closed-loop batch sweeps: latency and predictions/s per batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analysis.repetitions import CellSummary, GroupKey


@dataclass(frozen=True)
class SweepVerdict:
    """The SLO verdict for one sweep line (server x protocol x configuration x batch, open loop)."""

    group: GroupKey
    max_rate_under_slo: float | None
    max_rate_note: str | None
    p99_at_max_ms: float | None
    throughput_at_max_rps: float | None
    predictions_at_max_per_s: float | None
    half_rate: float | None
    p99_at_half_ms: float | None
    p99_at_half_note: str | None
    rates_measured: tuple[float, ...]
    excluded: tuple[str, ...]
    excluded_rates: tuple[float, ...] = ()
    # The lowest usable rate that missed the SLO: with max_rate_under_slo it brackets the true maximum
    # (what `inferload run --refine` bisects); None when no usable rate missed.
    first_miss_rate: float | None = None


@dataclass(frozen=True)
class BestConfiguration:
    group: GroupKey | None
    predictions_per_s: float | None
    max_rate_under_slo: float | None
    note: str | None


@dataclass(frozen=True)
class BatchingVerdict:
    """Latency- and throughput-optimal server configuration of one server x protocol x batch."""

    server: str
    protocol: str
    batch: int
    configurations: tuple[str, ...]
    common_rate: float | None
    latency_optimal: str | None
    latency_optimal_p99_ms: float | None
    throughput_optimal: str | None
    throughput_optimal_max_rate: float | None
    note: str | None


@dataclass(frozen=True)
class BatchSweepPoint:
    """One closed-loop cell of a batch-size sweep."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    concurrency: int | None
    p50_ms: float | None
    p99_ms: float | None
    throughput_rps: float | None
    predictions_per_s: float | None
    usable: bool


def _fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:g}/s"


def sweep_verdict(group: GroupKey, cells: Sequence[CellSummary]) -> SweepVerdict:
    """The verdict for one sweep line from its cells (any order)."""
    ordered = sorted((c for c in cells if c.key.rate is not None), key=lambda c: c.key.rate or 0.0)
    usable = [c for c in ordered if c.usable]
    excluded = tuple(
        f"{c.key.label()}: {'; '.join(c.exclusion_reasons) or 'no usable repetition'}"
        for c in ordered
        if not c.usable
    )
    best: CellSummary | None = None
    note: str | None = None
    first_miss: float | None = None
    for cell in usable:
        if not cell.met_slo:
            first_miss = cell.key.rate
            if best is None:
                misses = sorted({m for r in cell.runs if r.usable for m in r.slo_misses})
                note = (
                    f"the lowest usable rate, {_fmt_rate(cell.key.rate)}, already missed the SLO "
                    f"({'; '.join(misses)})"
                )
            break
        best = cell
    else:
        if best is not None:
            higher_excluded = any(
                (c.key.rate or 0.0) > (best.key.rate or 0.0) for c in ordered if not c.usable
            )
            note = "no usable rate missed the SLO: the true maximum is at least this; " + (
                "higher rates were excluded (see below)" if higher_excluded else "extend the sweep to find it"
            )
    if not usable:
        note = "no usable cells (all failed or generator-invalid)" if ordered else "no open-loop cells"
    max_rate = best.key.rate if best else None
    half_rate = p99_half = None
    half_note: str | None = None
    if max_rate is None:
        half_note = "no max rate under the SLO"
    else:
        target = max_rate / 2
        nearest = min(usable, key=lambda c: (abs((c.key.rate or 0.0) - target), c.key.rate or 0.0))
        half_rate, p99_half = nearest.key.rate, nearest.p99_ms.mean
        if half_rate != target:
            half_note = f"nearest measured rate to {target:g}/s"
    return SweepVerdict(
        group=group,
        max_rate_under_slo=max_rate,
        max_rate_note=note,
        p99_at_max_ms=best.p99_ms.mean if best else None,
        throughput_at_max_rps=best.throughput_rps.mean if best else None,
        predictions_at_max_per_s=best.predictions_per_s.mean if best else None,
        half_rate=half_rate,
        p99_at_half_ms=p99_half,
        p99_at_half_note=half_note,
        rates_measured=tuple(c.key.rate for c in ordered if c.key.rate is not None),
        excluded=excluded,
        excluded_rates=tuple(c.key.rate for c in ordered if not c.usable and c.key.rate is not None),
        first_miss_rate=first_miss,
    )


def sweep_verdicts(cells: Iterable[CellSummary]) -> list[SweepVerdict]:
    """One verdict per open-loop sweep line, sorted by server, protocol, configuration, batch."""
    groups: dict[GroupKey, list[CellSummary]] = {}
    for cell in cells:
        if cell.key.mode == "open" and cell.key.rate is not None:
            groups.setdefault(cell.key.group, []).append(cell)
    return [sweep_verdict(group, members) for group, members in sorted(groups.items())]


def best_configuration(verdicts: Sequence[SweepVerdict]) -> BestConfiguration:
    """The sweep line with the most predictions/s at its max rate under the SLO."""
    candidates = [v for v in verdicts if v.predictions_at_max_per_s is not None]
    if not candidates:
        note = "no configuration met the SLO at any usable rate"
        if not verdicts:
            note = "no open-loop rate sweeps to judge"
        return BestConfiguration(None, None, None, note)
    best = max(candidates, key=lambda v: (v.predictions_at_max_per_s or 0.0, v.max_rate_under_slo or 0.0))
    return BestConfiguration(best.group, best.predictions_at_max_per_s, best.max_rate_under_slo, None)


def batching_verdicts(
    cells: Iterable[CellSummary], verdicts: Sequence[SweepVerdict]
) -> list[BatchingVerdict]:
    """For every server x protocol x batch measured with more than one server configuration."""
    by_line = {v.group: v for v in verdicts}
    families: dict[tuple[str, str, int], dict[str, list[CellSummary]]] = {}
    for cell in cells:
        if cell.key.mode != "open" or cell.key.rate is None:
            continue
        family = families.setdefault((cell.key.server, cell.key.protocol, cell.key.batch), {})
        family.setdefault(cell.key.server_config_name, []).append(cell)
    results = []
    for (server, protocol, batch), configs in sorted(families.items()):
        if len(configs) < 2:
            continue
        names = tuple(sorted(configs))
        lines = {name: by_line.get(GroupKey(server, protocol, name, batch, "open")) for name in names}
        max_rates = {name: (v.max_rate_under_slo if v else None) for name, v in lines.items()}
        sustained = [r for r in max_rates.values() if r is not None]
        throughput_optimal = max_rate = None
        if sustained:
            throughput_optimal = max(names, key=lambda n: max_rates[n] or -1.0)
            max_rate = max_rates[throughput_optimal]
        usable_rates = [{c.key.rate for c in configs[n] if c.usable} for n in names]
        common = set.intersection(*usable_rates) if usable_rates else set()
        note: str | None = None
        common_rate: float | None = None
        if common:
            within = [
                r for r in common if r is not None and len(sustained) == len(names) and r <= min(sustained)
            ]
            if within:
                common_rate = max(r for r in within if r is not None)
            else:
                common_rate = min(r for r in common if r is not None)
                note = (
                    "not every configuration met the SLO at a common rate; compared at the lowest common rate"
                )
        latency_optimal = p99 = None
        if common_rate is not None:
            p99s = {
                n: next(c.p99_ms.mean for c in configs[n] if c.key.rate == common_rate and c.usable)
                for n in names
            }
            measured = {n: v for n, v in p99s.items() if v is not None}
            if measured:
                latency_optimal = min(measured, key=lambda n: measured[n])
                p99 = measured[latency_optimal]
        else:
            note = "the configurations share no usable rate; latency cannot be compared"
        results.append(
            BatchingVerdict(
                server,
                protocol,
                batch,
                names,
                common_rate,
                latency_optimal,
                p99,
                throughput_optimal,
                max_rate,
                note,
            )
        )
    return results


def batch_sweep(cells: Iterable[CellSummary]) -> list[BatchSweepPoint]:
    """Closed-loop cells as batch-sweep points, sorted by line and batch size."""
    points = [
        BatchSweepPoint(
            server=c.key.server,
            protocol=c.key.protocol,
            server_config_name=c.key.server_config_name,
            batch=c.key.batch,
            concurrency=c.key.concurrency,
            p50_ms=c.p50_ms.mean,
            p99_ms=c.p99_ms.mean,
            throughput_rps=c.throughput_rps.mean,
            predictions_per_s=c.predictions_per_s.mean,
            usable=c.usable,
        )
        for c in cells
        if c.key.mode == "closed"
    ]
    return sorted(
        points, key=lambda p: (p.server, p.protocol, p.server_config_name, p.concurrency or 0, p.batch)
    )
