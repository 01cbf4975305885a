"""Verdicts: which server x protocol x configuration x batch sustains the most load under the SLO.

- Max rate under SLO (per sweep line): walking the usable cells up the offered Poisson rate, the
  highest rate reached before the first cell that missed the SLO. Unusable cells (generator-invalid,
  failed, interrupted) and cells with too few requests for the SLO percentile are skipped and listed.
  A sweep that never missed says so: the true maximum is at least the highest rate measured.
- Its interval, a bracket [low, high) on the true maximum: with >= 2 repetitions, low = the smallest
  per-repetition max rate and high = the largest per-repetition first-miss rate (each repetition's
  sweep walked on its own); with one, low = the highest rate *surely* met (the SLO percentile's
  upper confidence bound within the SLO) and high = the lowest rate *surely* missed (its lower bound
  above the SLO, or errors over the limit). None = not bounded by this sweep.
- p99 at half that rate: the p99 (with interval) of the usable cell whose rate is nearest to max/2
  (ties: the lower rate).
- Best configuration: the sweep line with the most predictions/s (throughput x batch) at its max
  rate under SLO; it "beats" another line only when their sustained-predictions brackets
  (batch x [low, high)) separate, otherwise the two are "indistinguishable here".
- Batching matrix (several server configurations of one server x protocol x batch): throughput-optimal
  = highest max rate under SLO; latency-optimal = lowest p99 at a common rate, the highest rate every
  configuration was measured at and sustained within the SLO (or, failing that, the lowest rate all
  were measured at).
- Closed-loop batch sweeps: latency and predictions/s per batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analysis.intervals import MISSING, Estimate
from analysis.repetitions import CellSummary, GroupKey
from inferload_formats import strict_fields


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
    # the bracket on the true maximum (see the module docstring) and how it was found
    max_rate_low: float | None = None
    max_rate_high: float | None = None
    max_rate_method: str | None = None
    max_rate_by_repetition: tuple[float | None, ...] = ()
    # the SLO percentile at the max rate is within the SLO even at its upper confidence bound
    max_rate_surely_met: bool | None = None
    p99_at_max: Estimate = MISSING
    p99_at_half: Estimate = MISSING
    slo_at_max: Estimate = MISSING  # the SLO's own percentile at the max rate (the p99 above when it is p99)
    not_judged: tuple[str, ...] = ()  # cells with too few requests for the SLO percentile

    @property
    def never_judged(self) -> bool:
        """No rate was judged either way (too few effective requests, or every step excluded): the line
        neither met nor missed the SLO as far as this run can tell."""
        return self.max_rate_under_slo is None and self.first_miss_rate is None and self.max_rate_high is None

    @property
    def sustained_predictions(self) -> Estimate:
        """batch x the max-rate bracket: the sustained predictions/s the best configuration compares."""
        b = self.group.batch
        return Estimate(
            None if self.max_rate_under_slo is None else self.max_rate_under_slo * b,
            None if self.max_rate_low is None else self.max_rate_low * b,
            None if self.max_rate_high is None else self.max_rate_high * b,
            self.max_rate_method,
        )

    def beats(self, other: SweepVerdict) -> bool:
        """Surely sustains more predictions/s: this line's low end is at or above the other's (exclusive)
        high end."""
        mine, theirs = self.sustained_predictions, other.sustained_predictions
        return mine.low is not None and theirs.high is not None and mine.low >= theirs.high


@dataclass(frozen=True)
class BestConfiguration:
    group: GroupKey | None
    predictions_per_s: float | None
    max_rate_under_slo: float | None
    note: str | None
    sustained_predictions: Estimate = MISSING  # batch x the best line's max-rate bracket
    beats: tuple[GroupKey, ...] = ()  # lines it surely sustains more predictions/s than
    # lines it sustains more than in this run's pairs, not surely (one repetition, or a bracket left open)
    ahead_here_of: tuple[GroupKey, ...] = ()
    indistinguishable_from: tuple[GroupKey, ...] = ()  # lines whose brackets overlap its own


@strict_fields
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
    latency_optimal_p99: Estimate = MISSING
    # configurations the winner cannot be told apart from (overlapping intervals)
    latency_indistinguishable_from: tuple[str, ...] = ()
    throughput_indistinguishable_from: tuple[str, ...] = ()


@strict_fields
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
    p99: Estimate = MISSING
    predictions: Estimate = MISSING  # throughput estimate x batch


def _fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:g}/s"


JUDGED = ("met", "missed")


def _walk(rated: Sequence[tuple[float, str]]) -> tuple[float | None, float | None]:
    """(max rate met before the first miss, first miss rate) over (rate, status) sorted by rate."""
    best = first_miss = None
    for rate, status in rated:
        if status == "missed":
            first_miss = rate
            break
        if status == "met":
            best = rate
    return best, first_miss


def _repetition_walks(usable: Sequence[CellSummary]) -> dict[int, tuple[float | None, float | None]]:
    """Each repetition's sweep walked on its own (its usable, judged runs only)."""
    repetitions = sorted({r.repetition for c in usable for r in c.runs if r.usable})
    walks = {}
    for repetition in repetitions:
        rated = [
            (c.key.rate or 0.0, r.measured.slo.status)
            for c in usable
            for r in c.runs
            if r.usable and r.repetition == repetition and r.measured.slo.status in JUDGED
        ]
        walks[repetition] = _walk(sorted(rated))
    return walks


def repetition_max_rates(cells: Sequence[CellSummary]) -> dict[int, float | None]:
    """One sweep line's max rate under the SLO in each repetition, each repetition's sweep walked on its
    own (None: that repetition found none)."""
    usable = sorted((c for c in cells if c.usable and c.key.rate is not None),
                    key=lambda c: c.key.rate or 0.0)
    return {repetition: best for repetition, (best, _) in _repetition_walks(usable).items()}


def _bracket(
    usable: Sequence[CellSummary], max_rate: float | None, first_miss: float | None
) -> tuple[float | None, float | None, str, tuple[float | None, ...]]:
    """The bracket [low, high) on the true max rate, its method, and per-repetition max rates."""
    repeated = max((sum(1 for r in c.runs if r.usable) for c in usable), default=0) >= 2
    if repeated:
        walks = _repetition_walks(usable)
        maxima = tuple(m for m, _ in walks.values())
        misses = [f for _, f in walks.values()]
        low = None if any(m is None for m in maxima) else min(m for m in maxima if m is not None)
        high = None if any(f is None for f in misses) else max(f for f in misses if f is not None)
        return low, high, f"per-repetition max rates ({len(walks)} repetitions)", maxima
    judged = [(c.key.rate or 0.0, c) for c in usable if c.slo_status in JUDGED]
    low = max(
        (r for r, c in judged if max_rate is not None and r <= max_rate and c.met_surely), default=None
    )
    high = min(
        (r for r, c in judged if first_miss is not None and r >= first_miss and c.missed_surely),
        default=None,
    )
    method = ("bracketing rates within this run: highest met by its interval, lowest missed by it (one "
              "repetition: no between-run interval)")
    return low, high, method, ()


def _nearest(cells: Sequence[CellSummary], target: float) -> CellSummary:
    return min(cells, key=lambda c: (abs((c.key.rate or 0.0) - target), c.key.rate or 0.0))


def sweep_verdict(group: GroupKey, cells: Sequence[CellSummary]) -> SweepVerdict:
    """The verdict for one sweep line from its cells (any order)."""
    ordered = sorted((c for c in cells if c.key.rate is not None), key=lambda c: c.key.rate or 0.0)
    usable = [c for c in ordered if c.usable]
    excluded = tuple(
        f"{c.key.label()}: {'; '.join(c.exclusion_reasons) or 'no usable repetition'}"
        for c in ordered
        if not c.usable
    )
    not_judged = tuple(
        f"{c.key.label()}: {'; '.join(c.notes) or 'too few requests'}"
        for c in usable
        if c.slo_status == "too few requests"
    )
    judged = [c for c in usable if c.slo_status in JUDGED]
    best: CellSummary | None = None
    note: str | None = None
    first_miss: float | None = None
    for cell in judged:
        if not cell.met_slo:
            first_miss = cell.key.rate
            if best is None:
                misses = sorted({m for r in cell.runs if r.usable for m in r.measured.slo.misses})
                note = (
                    f"the lowest usable rate, {_fmt_rate(cell.key.rate)}, already missed the SLO "
                    f"({'; '.join(misses)})"
                )
            break
        best = cell
    else:
        if best is not None:
            higher_excluded = any(
                (c.key.rate or 0.0) > (best.key.rate or 0.0)
                for c in ordered
                if not c.usable or c.slo_status not in JUDGED
            )
            note = "no usable rate missed the SLO: the true maximum is at least this; " + (
                "higher rates were excluded or not judged (see below)"
                if higher_excluded
                else "extend the sweep to find it"
            )
    if not usable:
        note = "no usable cells (all failed or generator-invalid)" if ordered else "no open-loop cells"
    elif not judged:
        note = "too few requests for the SLO percentile at every usable rate: run the cells longer"
    max_rate = best.key.rate if best else None
    low, high, method, by_repetition = _bracket(usable, max_rate, first_miss)
    if best is not None and best.met_surely is False:
        estimate = best.slo_estimate
        sure = (
            f"met, but not surely: the SLO percentile's interval "
            f"{_num(estimate.low)}–{_num(estimate.high)} ms straddles the bound"
        )
        note = f"{note}; {sure}" if note else sure
    half_rate: float | None = None
    p99_half = MISSING
    half_note: str | None = None
    if max_rate is None:
        half_note = "no max rate under the SLO"
    else:
        target = max_rate / 2
        nearest = _nearest(usable, target)
        half_rate, p99_half = nearest.key.rate, nearest.p99
        if half_rate != target:
            half_note = f"nearest measured rate to {target:g}/s"
        if p99_half.value is None:
            half_note = "; ".join(n for n in (half_note, p99_half.note) if n)
    return SweepVerdict(
        group=group,
        max_rate_under_slo=max_rate,
        max_rate_note=note,
        p99_at_max_ms=best.p99.value if best else None,
        throughput_at_max_rps=best.throughput_rps.mean if best else None,
        predictions_at_max_per_s=best.predictions_per_s.mean if best else None,
        half_rate=half_rate,
        p99_at_half_ms=p99_half.value,
        p99_at_half_note=half_note,
        rates_measured=tuple(c.key.rate for c in ordered if c.key.rate is not None),
        excluded=excluded,
        excluded_rates=tuple(c.key.rate for c in ordered if not c.usable and c.key.rate is not None),
        first_miss_rate=first_miss,
        max_rate_low=low,
        max_rate_high=high,
        max_rate_method=method,
        max_rate_by_repetition=by_repetition,
        max_rate_surely_met=best.met_surely if best else None,
        p99_at_max=best.p99 if best else MISSING,
        p99_at_half=p99_half,
        slo_at_max=best.slo_estimate if best else MISSING,
        not_judged=not_judged,
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def sweep_verdicts(cells: Iterable[CellSummary]) -> list[SweepVerdict]:
    """One verdict per open-loop sweep line, sorted by server, protocol, configuration, batch."""
    groups: dict[GroupKey, list[CellSummary]] = {}
    for cell in cells:
        if cell.key.mode == "open" and cell.key.rate is not None:
            groups.setdefault(cell.key.group, []).append(cell)
    return [sweep_verdict(group, members) for group, members in sorted(groups.items())]


def best_configuration(verdicts: Sequence[SweepVerdict]) -> BestConfiguration:
    """The sweep line with the most predictions/s at its max rate under the SLO. An A/A check's twin of a
    line (group arm "b") is the A/A's evidence, never a configuration of its own: left out."""
    verdicts = [v for v in verdicts if v.group.arm != "b"]
    candidates = [v for v in verdicts if v.predictions_at_max_per_s is not None]
    if not candidates:
        note = "no configuration met the SLO at any usable rate"
        unjudged = [v for v in verdicts if v.never_judged]
        if unjudged:  # never judged at any rate: not a miss, and not evidence that nothing meets the SLO
            note = (f"no line was judged to meet the SLO: {len(unjudged)} of {len(verdicts)} could not be "
                    "judged at any rate (too few effective requests for the SLO percentile: run the "
                    "steps longer)")
        if not verdicts:
            note = "no open-loop rate sweeps to judge"
        return BestConfiguration(None, None, None, note)
    best = max(candidates, key=lambda v: (v.predictions_at_max_per_s or 0.0, v.max_rate_under_slo or 0.0))
    others = [v for v in verdicts if v is not best]
    beaten = tuple(v.group for v in others if best.beats(v))
    tied = tuple(v.group for v in others if not best.beats(v))
    return BestConfiguration(
        best.group,
        best.predictions_at_max_per_s,
        best.max_rate_under_slo,
        None,
        sustained_predictions=best.sustained_predictions,
        beats=beaten,
        indistinguishable_from=tied,
    )


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
        throughput_ties: tuple[str, ...] = ()
        if sustained:
            throughput_optimal = max(names, key=lambda n: max_rates[n] or -1.0)
            max_rate = max_rates[throughput_optimal]
            winner = lines[throughput_optimal]
            throughput_ties = tuple(
                n
                for n, v in lines.items()
                if n != throughput_optimal and winner is not None and v is not None and not winner.beats(v)
            )
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
        latency_estimate = MISSING
        latency_ties: tuple[str, ...] = ()
        if common_rate is not None:
            p99s = {
                n: next(c.p99 for c in configs[n] if c.key.rate == common_rate and c.usable) for n in names
            }
            measured = {n: v for n, v in p99s.items() if v.value is not None}
            if measured:
                latency_optimal = min(measured, key=lambda n: measured[n].value or 0.0)
                latency_estimate = measured[latency_optimal]
                p99 = latency_estimate.value
                latency_ties = tuple(
                    n
                    for n, v in p99s.items()
                    if n != latency_optimal and not v.separates_above(latency_estimate)
                )
            else:
                note = "; ".join(
                    x for x in (note, f"no p99 to compare at {common_rate:g}/s (too few requests)") if x
                )
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
                latency_optimal_p99=latency_estimate,
                latency_indistinguishable_from=latency_ties,
                throughput_indistinguishable_from=throughput_ties,
            )
        )
    return results


def _times(estimate: Estimate, factor: int) -> Estimate:
    def scaled(v: float | None) -> float | None:
        return None if v is None else v * factor

    return Estimate(
        scaled(estimate.value), scaled(estimate.low), scaled(estimate.high), estimate.method, estimate.note
    )


def best_batch(points: Sequence[BatchSweepPoint]) -> tuple[BatchSweepPoint | None, tuple[int, ...]]:
    """The batch size with the most predictions/s among `points` (one sweep line), and the batch
    sizes it cannot be told apart from (their predictions/s intervals reach its own)."""
    usable = [p for p in points if p.usable and p.predictions_per_s is not None]
    if not usable:
        return None, ()
    top = max(usable, key=lambda p: p.predictions_per_s or 0.0)
    ties = tuple(
        p.batch for p in usable if p is not top and not top.predictions.separates_above(p.predictions)
    )
    return top, ties


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
            p99=c.p99,
            predictions=_times(c.throughput, c.key.batch),
        )
        for c in cells
        if c.key.mode == "closed"
    ]
    return sorted(
        points, key=lambda p: (p.server, p.protocol, p.server_config_name, p.concurrency or 0, p.batch)
    )
