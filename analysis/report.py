"""Write the report of a results directory: `report.html` (self-contained), `summary.md`, `summary.json`.

The three outputs are views of one `ReportModel`, built once, so the HTML, the Markdown and the
JSON can never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
import orjson

from analysis import plots
from analysis.compare import Comparison, check_comparable, compare
from analysis.decomposition import Decomposition, ServerDecomposition, decompose, server_decomposition
from analysis.intervals import ORDER_STATISTIC, THROUGHPUT_SLICES, Estimate
from analysis.percentiles import CONFIDENCE, REPORTED_PERCENTILES, min_samples
from analysis.repetitions import GroupKey
from analysis.results import Experiment, load_experiment
from analysis.stats import RunSummary
from analysis.topology import TopologyReport, topology_report
from analysis.verdicts import (
    BatchingVerdict,
    BatchSweepPoint,
    BestConfiguration,
    SweepVerdict,
    batch_sweep,
    batching_verdicts,
    best_batch,
    best_configuration,
    sweep_verdicts,
)
from loadtest import EarlyStop

SUMMARY_SCHEMA = "inferload.summary"
# 2: intervals on every verdict and cell, the sample rule; 3: early_stop; 4: each run's round, position,
# arm and machine (cell.json v2), and every group's A/A arm
SUMMARY_SCHEMA_VERSION = 4
TEMPLATES = Path(__file__).parent / "templates"

TFSERVING_KIND_LABELS = {
    "tfs-compat": "TF Serving API, served by tfs-compat (TensorFlow runtime)",
    "tensorflow_model_server": "TensorFlow Serving (tensorflow_model_server)",
}
TRITON_KIND_LABELS = {
    "pytriton": "Triton 2.51, Python backend (the nvidia-pytriton wheel's tritonserver; model in NumPy)",
    "tritonserver": "Triton Inference Server (tritonserver on PATH), Python backend (model in NumPy)",
    "v2": "an Open Inference Protocol (V2) server, unlabelled",
}
REST_BINARY_NOTE = (
    "TF Serving's REST API accepts JSON only: its REST-binary form is base64 strings inside JSON "
    '({"b64": ...} instances on the predict_bytes signature). TorchServe\'s REST-binary is a raw '
    "application/octet-stream float32 body. Triton's REST-binary is the Open Inference Protocol's binary "
    "tensor extension: a JSON header (Inference-Header-Content-Length), then the raw float32 bytes."
)


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` put its three files."""

    html: Path
    markdown: Path
    json: Path


@dataclass(frozen=True)
class FloorTable:
    frameworks: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, float]], ...]


@dataclass(frozen=True)
class ReportModel:
    """Everything the three report views show, computed once."""

    experiment: Experiment
    verdicts: tuple[SweepVerdict, ...]
    best: BestConfiguration
    batching: tuple[BatchingVerdict, ...]
    sweep: tuple[BatchSweepPoint, ...]
    decomposition: tuple[Decomposition, ...]
    comparison: Comparison | None
    server_decomposition: tuple[ServerDecomposition, ...] = ()
    topology: TopologyReport | None = None  # CPU per request, replicas, balancer, cache (topology.py)

    @property
    def tfserving_label(self) -> str:
        kind = self.experiment.tfserving_kind
        if kind is None:
            return "not recorded" if any(r.server == "tfserving" for r in self.experiment.runs) else "not run"
        return TFSERVING_KIND_LABELS.get(kind, kind)

    @property
    def triton_label(self) -> str | None:
        """What served the `triton` lines (None when the experiment has none)."""
        runs = self.experiment.runs
        kinds = sorted({r.server_kind or "not recorded" for r in runs if r.server == "triton"})
        if not kinds:
            return None
        return "; ".join(TRITON_KIND_LABELS.get(kind, kind) for kind in kinds)

    @property
    def floor_table(self) -> FloorTable | None:
        """The in-process floor as batch rows x framework columns."""
        floor = self.experiment.floor
        if not floor:
            return None
        frameworks = tuple(sorted({f.framework for f in floor}))
        rows: dict[int, dict[str, float]] = {}
        for f in floor:
            rows.setdefault(f.batch, {})[f.framework] = f.p50_ms
        return FloorTable(frameworks, tuple(sorted(rows.items())))

    @property
    def machine_description(self) -> str:
        """The manifest's machine facts, sizes in GiB, for the report header."""
        machine = self.experiment.manifest.get("machine")
        if not isinstance(machine, dict) or not machine:
            return "not recorded"
        parts = []
        for key, value in machine.items():
            if key.endswith("_bytes") and isinstance(value, int | float):
                parts.append(f"{key.removesuffix('_bytes')}: {value / 2**30:.1f} GiB")
            elif isinstance(value, list):
                values = ", ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in value)
                parts.append(f"{key}: {values}")
            else:
                parts.append(f"{key}: {value}")
        return " · ".join(parts)

    @property
    def cpu_sets_description(self) -> str:
        """Where servers and load processes ran (manifest `cpus`, written by the runner)."""
        cpus = self.experiment.manifest.get("cpus")
        if not isinstance(cpus, dict):
            return "not recorded"
        servers, load = cpus.get("servers"), cpus.get("load")
        how = {"given": "as the matrix says", "default": "default split", "none": "unpinned"}
        source = how.get(str(cpus.get("source")), str(cpus.get("source")))
        return (f"servers: {servers or 'any CPU'} · load: {load or 'any CPU'} ({source}; "
                f"machine offers {cpus.get('available', '?')})")

    def sweep_lines(self) -> dict[str, list[BatchSweepPoint]]:
        """Batch-sweep points grouped by server x protocol x configuration x concurrency."""
        lines: dict[str, list[BatchSweepPoint]] = {}
        for point in self.sweep:
            config = f" [{point.server_config_name}]" if point.server_config_name != "default" else ""
            key = f"{point.server} {point.protocol}{config}, concurrency {point.concurrency}"
            lines.setdefault(key, []).append(point)
        return lines

    def batch_sweep_sentences(self) -> list[str]:
        """Per closed-loop sweep line: the batch size with the most predictions/s, and its latency."""
        sentences = []
        for line, points in self.sweep_lines().items():
            top, ties = best_batch(points)
            if top is not None:
                sure = (
                    f"; indistinguishable here from batch {', '.join(str(b) for b in ties)}"
                    if ties
                    else ""
                )
                sentences.append(
                    f"batch sweep {line}: most predictions/s {_num(top.predictions_per_s)}"
                    f"{_range(top.predictions)} at batch {top.batch} "
                    f"(latency p50 {_num(top.p50_ms)} ms, p99 {_estimate(top.p99, ' ms')}){sure}"
                )
        return sentences

    def best_batches(self) -> list[dict[str, Any]]:
        """Per closed-loop sweep line: the batch with the most predictions/s, its interval, and the batch
        sizes it cannot be told apart from (summary.json's `batch_sweep_best`)."""
        best = []
        for line, points in self.sweep_lines().items():
            top, ties = best_batch(points)
            if top is not None:
                best.append(
                    {
                        "line": line,
                        "batch": top.batch,
                        "predictions_per_s": asdict(top.predictions),
                        "indistinguishable_from_batches": list(ties),
                    }
                )
        return best

    def verdict_lines(self) -> list[str]:
        """One plain sentence per sweep line, then the best configuration: what the CLI prints."""
        lines = [verdict_sentence(v) for v in self.verdicts]
        if not self.verdicts:
            pass
        elif self.best.group is not None:
            lines.append(f"best: {best_sentence(self.best)}")
        else:
            lines.append(f"best: none ({self.best.note})")
        lines.extend(self.batch_sweep_sentences())
        for b in self.batching:
            lines.append(
                f"batching {b.server} {b.protocol} batch {b.batch}: "
                f"latency-optimal {b.latency_optimal or 'n/a'}{_ties(b.latency_indistinguishable_from)}, "
                f"throughput-optimal {b.throughput_optimal or 'n/a'}"
                f"{_ties(b.throughput_indistinguishable_from)}"
            )
        return lines

    def best_line(self) -> str:
        return best_sentence(self.best) if self.best.group is not None else f"none ({self.best.note})"

    def slo_word(self, cell: Any) -> str:
        """met / met, not surely / missed / too few requests / excluded: a cell's SLO status in words."""
        if cell.slo_status == "met" and cell.met_surely is False:
            return "met, not surely"
        return str(cell.slo_status)

    def method_sentence(self) -> str:
        rule = ", ".join(f"{k} {v:,}" for k, v in uncertainty_methods()["min_requests"].items())
        return (
            f"intervals are {CONFIDENCE:.0%} two-sided: a percentile of one run by the exact binomial "
            "order-statistic interval; over repetitions by Student-t; one run's throughput by batch means "
            f"over {THROUGHPUT_SLICES} slices. A percentile is reported only with enough ok requests "
            f"({rule}); 'A beats B' only when intervals separate"
        )

    @property
    def early_stop_rule(self) -> str | None:
        """The matrix's stopping rule in words ("ran >= 20 s and until the p99's 95 % interval was within
        ±10 % of it, at most 120 s"), or None when its cells ran a fixed duration."""
        matrix = self.experiment.manifest.get("experiment")
        rule = matrix.get("early_stop") if isinstance(matrix, dict) else None
        if isinstance(rule, dict):
            return EarlyStop(percentile=self.experiment.slo.percentile, **rule).describe(
                float(matrix["duration_s"]))  # type: ignore[index]
        outcomes = [r.early_stop for r in self.experiment.runs if r.early_stop]
        if not outcomes:  # a bare load run records its rule in its own load.json
            return None
        first = outcomes[0]
        return EarlyStop(percentile=first["percentile"], interval_within=first["interval_within"],
                         max_duration_s=first["max_duration_s"]).describe(first["min_duration_s"])

    def early_stop_rows(self) -> list[tuple[str, int, str]]:
        """Per run with the rule: cell id, repetition, and how it ended in words."""
        return [(r.cell_id, r.repetition, r.early_stop_note or "") for r in self.experiment.runs
                if r.early_stop_note]

    def regression_lines(self) -> list[str]:
        """Each p99 or max rate that got worse beyond the noise (empty without a comparison)."""
        if self.comparison is None:
            return []
        return [
            f"{d.label}: {_num(d.before)}{_range(d.before_interval)} -> {_num(d.after)}"
            f"{_range(d.after_interval)}"
            for d in self.comparison.regressions
        ]


def _ties(names: tuple[str, ...]) -> str:
    return f" (indistinguishable here from {', '.join(names)})" if names else ""


def _range(estimate: Estimate) -> str:
    """ " [low–high]" for an interval, "" without one (one side missing shows as ?)."""
    if estimate.low is None and estimate.high is None:
        return ""
    return f" [{_num(estimate.low) if estimate.low is not None else '?'}–" + (
        f"{_num(estimate.high)}]" if estimate.high is not None else "?]"
    )


def _estimate(estimate: Estimate, unit: str = "") -> str:
    """A value with its interval, or why there is none ("too few requests for p99 ...")."""
    if estimate.value is None:
        return estimate.note or "n/a"
    return f"{_num(estimate.value)}{unit}{_range(estimate)}"


def best_sentence(best: BestConfiguration) -> str:
    assert best.group is not None
    sentence = (
        f"{best.group.label()}: {_num(best.predictions_per_s)} predictions/s at "
        f"{_num(best.max_rate_under_slo)} requests/s under the SLO"
    )
    if best.beats and not best.indistinguishable_from:
        return sentence + "; beats every other line (brackets separate)"
    if best.indistinguishable_from:
        names = ", ".join(g.label() for g in best.indistinguishable_from)
        return sentence + f"; indistinguishable here from {names}"
    return sentence


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def verdict_sentence(verdict: SweepVerdict) -> str:
    head = verdict.group.label()
    if verdict.max_rate_under_slo is None:
        return f"{head}: no rate met the SLO{_rate_bracket(verdict)} ({verdict.max_rate_note})"
    bracket = _rate_bracket(verdict)
    sentence = (
        f"{head}: max {_num(verdict.max_rate_under_slo)}/s under the SLO{bracket} "
        f"(p99 {_estimate(verdict.p99_at_max, ' ms')} there; p99 {_estimate(verdict.p99_at_half, ' ms')} at "
        f"{_num(verdict.half_rate)}/s)"
    )
    if verdict.max_rate_note:
        sentence += f"; {verdict.max_rate_note}"
    return sentence


def _rate_bracket(verdict: SweepVerdict) -> str:
    """ " (true max in [low, high)/s)": the bracket on the true max rate, when either end is known."""
    low, high = verdict.max_rate_low, verdict.max_rate_high
    if low is None and high is None:
        return ""
    left = f"[{_num(low)}" if low is not None else "(0"
    right = f"{_num(high)})" if high is not None else "∞)"
    return f" (true max in {left}, {right}/s)"


def build_model(results_dir: Path | str, compare_with: Path | str | None = None) -> ReportModel:
    experiment = load_experiment(results_dir)
    verdicts = sweep_verdicts(experiment.cells)
    comparison = None
    if compare_with is not None:
        before = load_experiment(compare_with)
        check_comparable(before, experiment)
        comparison = compare(
            before.name,
            before.cells,
            sweep_verdicts(before.cells),
            experiment.name,
            experiment.cells,
            verdicts,
        )
    return ReportModel(
        experiment=experiment,
        verdicts=tuple(verdicts),
        best=best_configuration(verdicts),
        batching=tuple(batching_verdicts(experiment.cells, verdicts)),
        sweep=tuple(batch_sweep(experiment.cells)),
        decomposition=tuple(decompose(experiment.cells, experiment.floor, experiment.payloads)),
        comparison=comparison,
        server_decomposition=tuple(server_decomposition(experiment.cells)),
        topology=topology_report(experiment.manifest, experiment.cells, verdicts),
    )


def _group_fields(group: GroupKey | None) -> dict[str, Any]:
    keys = ("server", "protocol", "server_config_name", "batch", "mode", "repeat_share")
    if group is None:
        return dict.fromkeys(keys)
    return asdict(group)


def _run_entry(run: RunSummary) -> dict[str, Any]:
    """A run as summary.json holds it: its fields, the machine as cell.json's `machine` (a document)."""
    entry = asdict(replace(run, machine=None))
    entry["machine"] = run.machine.to_dict() if run.machine is not None else None
    return entry


def summary_document(model: ReportModel) -> dict[str, Any]:
    """The machine-readable summary. Verdict fields are always present; null comes with a `*_note` reason."""
    experiment = model.experiment
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
            "regressions": [d.label for d in c.regressions],
        }
    return {
        "schema": SUMMARY_SCHEMA,
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "name": experiment.name,
        "results_dir": str(experiment.path),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "slo": asdict(experiment.slo),
        "model": experiment.manifest.get("model"),
        "tfserving_kind": experiment.tfserving_kind,
        "tfserving_label": model.tfserving_label,
        "versions": experiment.manifest.get("versions"),
        "machine": experiment.manifest.get("machine"),
        "cpus": experiment.manifest.get("cpus"),
        "uncertainty": uncertainty_methods(),
        "verdicts": verdicts,
        "best_configuration": best,
        "batching": [asdict(b) for b in model.batching],
        "batch_sweep": [asdict(p) for p in model.sweep],
        "batch_sweep_best": model.best_batches(),
        "decomposition": [asdict(d) for d in model.decomposition],
        "server_decomposition": [asdict(d) for d in model.server_decomposition],
        "cells": cells,
        "runs": [_run_entry(r) for r in experiment.runs],
        "excluded_runs": [
            {"cell_id": r.cell_id, "run_dir": r.run_dir, "reasons": list(r.exclusion_reasons)}
            for r in experiment.excluded_runs
        ],
        "skipped_cells": [{"cell_id": c, "reason": r} for c, r in experiment.skipped_cells],
        "comparison": comparison,
        "topology": model.topology.to_dict() if model.topology is not None else None,
        "early_stop": _early_stop_document(model),
    }


def _early_stop_document(model: ReportModel) -> dict[str, Any] | None:
    """The stopping rule in words and, per run, its measured window, why it ended and the interval then."""
    rule = model.early_stop_rule
    if rule is None:
        return None
    runs = [{"cell_id": r.cell_id, "repetition": r.repetition, **r.early_stop}
            for r in model.experiment.runs if r.early_stop]
    return {"rule": f"cells {rule}", "runs": runs}


def uncertainty_methods() -> dict[str, Any]:
    """How every interval in the report was computed, and the sample rule (also shown in the report)."""
    return {
        "confidence": CONFIDENCE,
        "percentile_one_run": ORDER_STATISTIC
        + ": the ranks l, u with P(l <= B <= u - 1) >= 95 %, B ~ Binomial(n, p/100)",
        "over_repetitions": "Student-t interval of the mean of the per-repetition values (>= 2 repetitions)",
        "throughput_one_run": f"batch means: Student-t over {THROUGHPUT_SLICES} equal slices of the window",
        "max_rate": "a bracket [low, high) on the true max: with repetitions, the smallest per-repetition "
        "max rate and the largest per-repetition first-miss rate; with one, the highest rate surely met "
        "(the SLO percentile's upper bound within the SLO) and the lowest surely missed",
        "comparisons": "'A beats B' only when the intervals do not overlap, else 'indistinguishable here'",
        "min_requests": {f"p{p:g}": min_samples(p) for p in REPORTED_PERCENTILES},
        "sample_rule": "a percentile is reported only when both ends of its order-statistic interval "
        "exist (n >= min_requests); with fewer, a cell does not count as meeting the SLO, and misses it "
        "only when the percentile's lower bound is already above the SLO bound",
    }


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["est"] = _estimate  # value [low–high], or why there is none
    env.filters["bracket"] = _rate_bracket  # a verdict's " (true max in [low, high)/s)"
    env.filters["pct"] = lambda v: "n/a" if v is None else ("0" if v == 0 else f"{100 * v:.2g}%")
    env.filters["signed"] = lambda v: "n/a" if v is None else f"{v:+.3g}"
    env.filters["mib"] = lambda v: "n/a" if v is None else f"{v / (1024 * 1024):,.0f}"
    return env


def _figures(model: ReportModel) -> dict[str, str | None]:
    cells = model.experiment.cells
    return {
        "latency": plots.latency_vs_load(cells, model.experiment.slo),
        "throughput": plots.throughput_vs_load(cells),
        "batch_sweep": plots.batch_sweep(model.sweep),
        "payloads": plots.payload_costs(model.experiment.payloads),
        "decomposition": plots.decomposition(model.decomposition),
        "server_usage": plots.server_usage(cells),
    }


def write_report(
    results_dir: Path | str,
    *,
    compare_with: Path | str | None = None,
    out_dir: Path | str | None = None,
) -> ReportPaths:
    """Read `results_dir` (and `compare_with`, the *before* side of a comparison) and write the report.

    Raises `analysis.errors.ResultsError` for missing, empty or unsupported results.
    """
    return render_report(build_model(results_dir, compare_with), out_dir)


def render_report(model: ReportModel, out_dir: Path | str | None = None) -> ReportPaths:
    """Write the three views of `model` into `out_dir` (default: the results directory itself)."""
    out = Path(out_dir) if out_dir is not None else model.experiment.path
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out / "report.html", out / "summary.md", out / "summary.json")
    document = summary_document(model)
    paths.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    context = {
        "m": model,
        "e": model.experiment,
        "doc": document,
        "rest_binary_note": REST_BINARY_NOTE,
    }
    paths.markdown.write_text(_environment(False).get_template("summary.md.j2").render(**context))
    context["figures"] = _figures(model)
    paths.html.write_text(_environment(True).get_template("report.html.j2").render(**context))
    return paths
