"""summary.json (`inferload.summary` v5): the report's machine-readable view, one typed definition.

Built from the one `ReportModel` (analysis/report_model.py) by `summary_document`, written by the report,
and read back through `SummaryDocument.read` (`.ci/check_smoke_report.py` does). Verdict fields are
always present; a null comes with a `*_note` saying why. Version 5: `runs` are `RunSummary` records as
analysis holds them (`key`: what the run measured; `stats`: its statistics, null without records).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from analysis.decomposition import Decomposition, ServerDecomposition
from analysis.intervals import Estimate
from analysis.keys import GroupKey
from analysis.repetitions import Spread
from analysis.report_model import ReportModel, uncertainty_methods
from analysis.stats import RunSummary
from analysis.verdicts import BatchingVerdict, BatchSweepPoint
from inferload_formats import CpuPlanEntry, Document, ManifestModel, SkippedCellEntry, Slo

SUMMARY_FILE = "summary.json"
SUMMARY_SCHEMA: Final = "inferload.summary"
# 2: intervals on every verdict and cell, the sample rule; 3: early_stop; 4: each run's round, position,
# arm and machine (cell.json v2), and every group's A/A arm; 5: runs as RunSummary (key, stats); 6: the
# comparison's distributions, threshold and machine pace, the run's machine_speed, paired and aa; 7: the best
# line's ahead_here_of (lines its pairs put lower, not surely)
SUMMARY_SCHEMA_VERSION = 7


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VerdictEntry(_Entry):
    """One sweep line's verdict (`analysis.verdicts.SweepVerdict`), its group's fields flattened."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    mode: str
    repeat_share: float | None
    arm: str  # "b": an A/A check's twin of a line ("": the line itself)
    max_rate_under_slo: float | None
    max_rate_under_slo_note: str | None
    p99_at_max_rate_ms: float | None
    throughput_at_max_rate_rps: float | None
    predictions_at_max_rate_per_s: float | None
    half_rate: float | None
    p99_at_half_rate_ms: float | None
    p99_at_half_rate_note: str | None
    rates_measured: list[float]
    first_miss_rate: float | None
    excluded_cells: list[str]
    max_rate_low: float | None
    max_rate_high: float | None
    max_rate_method: str | None
    max_rate_by_repetition: list[float | None]
    max_rate_surely_met: bool | None
    p99_at_max_rate: Estimate
    p99_at_half_rate: Estimate
    not_judged_cells: list[str]


class BestEntry(_Entry):
    """The best configuration (`analysis.verdicts.BestConfiguration`); its group's fields null without one."""

    server: str | None
    protocol: str | None
    server_config_name: str | None
    batch: int | None
    mode: str | None
    repeat_share: float | None
    arm: str | None
    predictions_per_s: float | None
    max_rate_under_slo: float | None
    note: str | None
    sustained_predictions: Estimate
    beats: list[str]
    ahead_here_of: list[str]
    indistinguishable_from: list[str]


class BatchSweepBest(_Entry):
    """Per closed-loop sweep line: the batch with the most predictions/s and the ones it ties with."""

    line: str
    batch: int
    predictions_per_s: Estimate
    indistinguishable_from_batches: list[int]


class CellEntry(_Entry):
    """One cell over its repetitions (`analysis.repetitions.CellSummary`), its key's fields flattened."""

    server: str
    protocol: str
    mode: str
    rate: float | None
    concurrency: int | None
    batch: int
    server_config_name: str
    repeat_share: float | None
    arm: str
    repetitions: int
    usable: bool
    met_slo: bool
    exclusion_reasons: list[str]
    p50_ms: Spread
    p99_ms: Spread
    throughput_rps: Spread
    predictions_per_s: Spread
    error_rate: Spread
    drop_rate: Spread
    p99: Estimate
    slo_percentile: Estimate
    throughput: Estimate
    slo_status: str
    met_surely: bool | None
    missed_surely: bool | None
    notes: list[str]


class ExcludedRun(_Entry):
    cell_id: str
    run_dir: str
    reasons: list[str]


class _Delta(_Entry):
    before: float | None
    after: float | None
    delta: float | None
    delta_percent: float | None
    before_interval: tuple[float | None, float | None]
    after_interval: tuple[float | None, float | None]
    verdict: str  # worse | better | indistinguishable | not comparable


class CellDelta(_Delta):
    cell: str


class LineDelta(_Delta):
    line: str


class DistributionEntry(_Entry):
    """One cell's whole latency distribution compared (analysis/gate.py): after / before latency ratio with
    its 95 % interval, the rank test's p and its Holm-adjusted p, the verdict. Nulls: not compared."""

    cell: str
    verdict: str
    ratio: float | None
    low: float | None
    high: float | None
    p_value: float | None
    adjusted_p: float | None


class PaceEntry(_Entry):
    """The machine's calibration in both runs (median in-process predict, ms, no load) and its ratio."""

    before_ms: float | None
    after_ms: float | None
    batch: int | None
    tolerance: float
    ratio: float | None
    described: str


class ComparisonEntry(_Entry):
    """A --compare report: each cell's distribution and p99, each line's max rate, before -> after; the
    threshold below which a change is indistinguishable, the machine's pace, and the regressions."""

    before: str
    after: str
    p99_ms: list[CellDelta]
    max_rate_under_slo: list[LineDelta]
    distributions: list[DistributionEntry]
    threshold: float
    threshold_source: str
    pace: PaceEntry | None
    regressions: list[str]


class SummaryDocument(Document):
    """summary.json: the verdicts, the best configuration, every cell and run, and how each interval was
    computed (`uncertainty`), with what ran where (model, versions, machine, CPU sets)."""

    schema_: Literal["inferload.summary"] = Field(default=SUMMARY_SCHEMA, alias="schema")
    schema_version: int = SUMMARY_SCHEMA_VERSION
    name: str
    results_dir: str
    generated_at: str
    slo: Slo
    model: ManifestModel | None
    tfserving_kind: str | None
    tfserving_label: str
    versions: dict[str, str] | None
    machine: dict[str, Any] | None
    cpus: CpuPlanEntry | None
    uncertainty: dict[str, Any]  # `report_model.uncertainty_methods()`: each method in words
    verdicts: list[VerdictEntry]
    best_configuration: BestEntry
    batching: list[BatchingVerdict]
    batch_sweep: list[BatchSweepPoint]
    batch_sweep_best: list[BatchSweepBest]
    decomposition: list[Decomposition]
    server_decomposition: list[ServerDecomposition]
    cells: list[CellEntry]
    runs: list[RunSummary]
    excluded_runs: list[ExcludedRun]
    skipped_cells: list[SkippedCellEntry]
    comparison: ComparisonEntry | None
    topology: dict[str, Any] | None  # `analysis.topology.TopologyReport.to_dict()`
    early_stop: dict[str, Any] | None  # the stopping rule in words and, per run, its outcome
    machine_speed: dict[str, Any] | None  # the machine-speed timeline, the flagged cells and why, in words
    paired: list[dict[str, Any]]  # the best line's max rate paired by repetition against every other line
    aa: list[dict[str, Any]]  # the A/A minimum detectable difference per metric (analysis/aa.py)

    def verdict_of(self, server: str, protocol: str) -> list[VerdictEntry]:
        return [v for v in self.verdicts if (v.server, v.protocol) == (server, protocol)]


def _group_fields(group: GroupKey | None) -> dict[str, Any]:
    keys = ("server", "protocol", "server_config_name", "batch", "mode", "repeat_share", "arm")
    if group is None:
        return dict.fromkeys(keys)
    return asdict(group)


def summary_document(model: ReportModel) -> SummaryDocument:
    """The machine-readable summary. Verdict fields are always present; null comes with a `*_note` reason."""
    experiment = model.results
    verdicts = []
    for v in model.verdicts:
        entry = _group_fields(v.group)
        entry.update(
            max_rate_under_slo=v.max_rate_under_slo,
            max_rate_under_slo_note=v.max_rate_note,
            p99_at_max_rate_ms=v.p99_at_max_ms,
            throughput_at_max_rate_rps=v.throughput_at_max_rps,
            predictions_at_max_rate_per_s=v.predictions_at_max_per_s,
            half_rate=v.half_rate,
            p99_at_half_rate_ms=v.p99_at_half_ms,
            p99_at_half_rate_note=v.p99_at_half_note,
            rates_measured=list(v.rates_measured),
            first_miss_rate=v.first_miss_rate,
            excluded_cells=list(v.excluded),
            max_rate_low=v.max_rate_low,
            max_rate_high=v.max_rate_high,
            max_rate_method=v.max_rate_method,
            max_rate_by_repetition=list(v.max_rate_by_repetition),
            max_rate_surely_met=v.max_rate_surely_met,
            p99_at_max_rate=asdict(v.p99_at_max),
            p99_at_half_rate=asdict(v.p99_at_half),
            not_judged_cells=list(v.not_judged),
        )
        verdicts.append(entry)
    best = _group_fields(model.best.group)
    best.update(
        predictions_per_s=model.best.predictions_per_s,
        max_rate_under_slo=model.best.max_rate_under_slo,
        note=model.best.note,
        sustained_predictions=asdict(model.best.sustained_predictions),
        beats=[g.label() for g in model.best.beats],
        ahead_here_of=[g.label() for g in model.best.ahead_here_of],
        indistinguishable_from=[g.label() for g in model.best.indistinguishable_from],
    )
    cells = []
    for cell in experiment.cells:
        entry = asdict(cell.key)
        entry.update(
            repetitions=len(cell.runs),
            usable=cell.usable,
            met_slo=cell.met_slo,
            exclusion_reasons=list(cell.exclusion_reasons),
            p50_ms=asdict(cell.p50_ms),
            p99_ms=asdict(cell.p99_ms),
            throughput_rps=asdict(cell.throughput_rps),
            predictions_per_s=asdict(cell.predictions_per_s),
            error_rate=asdict(cell.error_rate),
            drop_rate=asdict(cell.drop_rate),
            p99=asdict(cell.p99),
            slo_percentile=asdict(cell.slo_estimate),
            throughput=asdict(cell.throughput),
            slo_status=cell.slo_status,
            met_surely=cell.met_surely,
            missed_surely=cell.missed_surely,
            notes=list(cell.notes),
        )
        cells.append(entry)
    comparison = None
    if model.comparison is not None:
        c = model.comparison

        def delta(d: Any, name: str) -> dict[str, Any]:
            return {
                name: d.label,
                "before": d.before,
                "after": d.after,
                "delta": d.change,
                "delta_percent": d.change_percent,
                "before_interval": [d.before_interval.low, d.before_interval.high],
                "after_interval": [d.after_interval.low, d.after_interval.high],
                "verdict": d.verdict,
            }

        comparison = {
            "before": c.before_name,
            "after": c.after_name,
            "p99_ms": [delta(d, "cell") for d in c.p99_ms],
            "max_rate_under_slo": [delta(d, "line") for d in c.max_rate_under_slo],
            "distributions": [
                {"cell": s.label, "verdict": s.verdict, "adjusted_p": s.adjusted_p,
                 "ratio": s.shift.ratio if s.shift else None, "low": s.shift.low if s.shift else None,
                 "high": s.shift.high if s.shift else None, "p_value": s.shift.p_value if s.shift else None}
                for s in c.shifts
            ],
            "threshold": c.threshold,
            "threshold_source": c.threshold_source,
            "pace": None if c.pace is None else {**asdict(c.pace), "ratio": c.pace.ratio,
                                                 "described": c.pace.describe()},
            "regressions": list(dict.fromkeys([*(s.label for s in c.shifted_worse),
                                               *(d.label for d in c.regressions)])),
        }
    return SummaryDocument.model_validate({
        "name": experiment.name,
        "results_dir": str(experiment.path),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "slo": experiment.slo,
        "model": experiment.model,
        "tfserving_kind": experiment.tfserving_kind,
        "tfserving_label": model.tfserving_label,
        "versions": experiment.manifest.versions if experiment.manifest is not None else None,
        "machine": experiment.manifest.machine if experiment.manifest is not None else None,
        "cpus": experiment.manifest.cpus if experiment.manifest is not None else None,
        "uncertainty": uncertainty_methods(),
        "verdicts": verdicts,
        "best_configuration": best,
        "batching": list(model.batching),
        "batch_sweep": list(model.sweep),
        "batch_sweep_best": model.best_batches(),
        "decomposition": list(model.decomposition),
        "server_decomposition": list(model.server_decomposition),
        "cells": cells,
        "runs": list(experiment.runs),
        "excluded_runs": [
            {"cell_id": r.cell_id, "run_dir": r.run_dir, "reasons": list(r.exclusion_reasons)}
            for r in experiment.excluded_runs
        ],
        "skipped_cells": [{"cell_id": c, "reason": r} for c, r in experiment.skipped_cells],
        "comparison": comparison,
        "topology": model.topology.to_dict() if model.topology is not None else None,
        "early_stop": _early_stop_document(model),
        "machine_speed": _machine_speed_document(model),
        "paired": [{"a": c.a, "b": c.b, "metric": c.metric, "pairs": len(c.pairs), "excluded": c.excluded,
                    "ratio": c.ratio, "low": c.low, "high": c.high, "verdict": c.verdict, "why": c.why,
                    "described": c.describe()} for c in model.paired],
        "aa": [asdict(m) for m in model.aa],
    })


def _machine_speed_document(model: ReportModel) -> dict[str, Any] | None:
    """The timeline, the flagged cells and why, and the report's words on the machine."""
    timeline = model.timeline
    if timeline is None:
        return None
    return {
        "calibration_ms": timeline.calibration_ms,
        "batch": timeline.batch,
        "tolerance": timeline.tolerance,
        "calibrations": [asdict(p) for p in timeline.calibrations],
        "cells": [asdict(p) for p in timeline.cells],
        "flagged": {cell: list(why) for cell, why in model.drift_flags.items()},
        "described": model.machine_lines(),
    }


def _early_stop_document(model: ReportModel) -> dict[str, Any] | None:
    """The stopping rule in words and, per run, its measured window, why it ended and the interval then."""
    rule = model.early_stop_rule
    if rule is None:
        return None
    runs = [{"cell_id": r.cell_id, "repetition": r.repetition, **r.early_stop.model_dump()}
            for r in model.results.runs if r.early_stop]
    return {"rule": f"cells {rule}", "runs": runs}




def read_summary(path: str | Path) -> SummaryDocument:
    """A summary.json (the file, or the directory the report was written to); `SchemaError` naming the
    file for another schema or version, or a bad field."""
    path = Path(path)
    return SummaryDocument.read(path / SUMMARY_FILE if path.is_dir() else path)
