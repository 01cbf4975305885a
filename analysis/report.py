"""Write the report of a results directory: `report.html` (self-contained), `summary.md`, `summary.json`.

The three outputs are views of one `ReportModel`, built once, so the HTML, the Markdown and the
JSON can never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2
import orjson

from analysis import plots
from analysis.compare import Comparison, compare
from analysis.decomposition import Decomposition, decompose
from analysis.repetitions import GroupKey
from analysis.results import Experiment, load_experiment
from analysis.verdicts import (
    BatchingVerdict,
    BatchSweepPoint,
    BestConfiguration,
    SweepVerdict,
    batch_sweep,
    batching_verdicts,
    best_configuration,
    sweep_verdicts,
)

SUMMARY_SCHEMA = "inferload.summary"
SUMMARY_SCHEMA_VERSION = 1
TEMPLATES = Path(__file__).parent / "templates"

TFSERVING_KIND_LABELS = {
    "tfs-compat": "TF Serving API, served by tfs-compat (TensorFlow runtime)",
    "tensorflow_model_server": "TensorFlow Serving (tensorflow_model_server)",
}
REST_BINARY_NOTE = (
    "TF Serving's REST API accepts JSON only: its REST-binary form is base64 strings inside JSON "
    '({"b64": ...} instances on the predict_bytes signature). TorchServe\'s REST-binary is a raw '
    "application/octet-stream float32 body."
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

    @property
    def tfserving_label(self) -> str:
        kind = self.experiment.tfserving_kind
        if kind is None:
            return "not recorded" if any(r.server == "tfserving" for r in self.experiment.runs) else "not run"
        return TFSERVING_KIND_LABELS.get(kind, kind)

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
            usable = [p for p in points if p.usable and p.predictions_per_s is not None]
            if usable:
                top = max(usable, key=lambda p: p.predictions_per_s or 0.0)
                sentences.append(
                    f"batch sweep {line}: most predictions/s {_num(top.predictions_per_s)} "
                    f"at batch {top.batch} "
                    f"(latency p50 {_num(top.p50_ms)} ms, p99 {_num(top.p99_ms)} ms)"
                )
        return sentences

    def verdict_lines(self) -> list[str]:
        """One plain sentence per sweep line, then the best configuration: what the CLI prints."""
        lines = [verdict_sentence(v) for v in self.verdicts]
        if not self.verdicts:
            pass
        elif self.best.group is not None:
            lines.append(
                f"best: {self.best.group.label()}: {_num(self.best.predictions_per_s)} predictions/s "
                f"at {_num(self.best.max_rate_under_slo)} requests/s under the SLO"
            )
        else:
            lines.append(f"best: none ({self.best.note})")
        lines.extend(self.batch_sweep_sentences())
        for b in self.batching:
            lines.append(
                f"batching {b.server} {b.protocol} batch {b.batch}: "
                f"latency-optimal {b.latency_optimal or 'n/a'}, "
                f"throughput-optimal {b.throughput_optimal or 'n/a'}"
            )
        return lines


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def verdict_sentence(verdict: SweepVerdict) -> str:
    head = verdict.group.label()
    if verdict.max_rate_under_slo is None:
        return f"{head}: no rate met the SLO ({verdict.max_rate_note})"
    sentence = (
        f"{head}: max {_num(verdict.max_rate_under_slo)}/s under the SLO "
        f"(p99 {_num(verdict.p99_at_max_ms)} ms there; p99 {_num(verdict.p99_at_half_ms)} ms at "
        f"{_num(verdict.half_rate)}/s)"
    )
    if verdict.max_rate_note:
        sentence += f"; {verdict.max_rate_note}"
    return sentence


def build_model(results_dir: Path | str, compare_with: Path | str | None = None) -> ReportModel:
    experiment = load_experiment(results_dir)
    verdicts = sweep_verdicts(experiment.cells)
    comparison = None
    if compare_with is not None:
        before = load_experiment(compare_with)
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
    )


def _group_fields(group: GroupKey | None) -> dict[str, Any]:
    keys = ("server", "protocol", "server_config_name", "batch", "mode")
    if group is None:
        return dict.fromkeys(keys)
    return asdict(group)


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
        )
        verdicts.append(entry)
    best = _group_fields(model.best.group)
    best.update(
        predictions_per_s=model.best.predictions_per_s,
        max_rate_under_slo=model.best.max_rate_under_slo,
        note=model.best.note,
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
        )
        cells.append(entry)
    comparison = None
    if model.comparison is not None:
        c = model.comparison
        comparison = {
            "before": c.before_name,
            "after": c.after_name,
            "p99_ms": [
                {
                    "cell": d.label,
                    "before": d.before,
                    "after": d.after,
                    "delta": d.change,
                    "delta_percent": d.change_percent,
                }
                for d in c.p99_ms
            ],
            "max_rate_under_slo": [
                {
                    "line": d.label,
                    "before": d.before,
                    "after": d.after,
                    "delta": d.change,
                    "delta_percent": d.change_percent,
                }
                for d in c.max_rate_under_slo
            ],
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
        "verdicts": verdicts,
        "best_configuration": best,
        "batching": [asdict(b) for b in model.batching],
        "batch_sweep": [asdict(p) for p in model.sweep],
        "decomposition": [asdict(d) for d in model.decomposition],
        "cells": cells,
        "runs": [asdict(r) for r in experiment.runs],
        "excluded_runs": [
            {"cell_id": r.cell_id, "run_dir": r.run_dir, "reasons": list(r.exclusion_reasons)}
            for r in experiment.excluded_runs
        ],
        "skipped_cells": [{"cell_id": c, "reason": r} for c, r in experiment.skipped_cells],
        "comparison": comparison,
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
