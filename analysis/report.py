"""Write the report of a results directory: `report.html` (self-contained), `summary.md`, `summary.json`.

The three outputs are views of one `ReportModel` (analysis/report_model.py), built once, so the HTML,
the Markdown and the JSON (analysis/summary.py) can never disagree. This module renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from analysis import plots
from analysis.report_model import ReportModel, build_model, number, rate_bracket, with_interval
from analysis.summary import SUMMARY_FILE, summary_document

TEMPLATES = Path(__file__).parent / "templates"
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


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    env.filters["est"] = with_interval  # value [low–high], or why there is none
    env.filters["bracket"] = rate_bracket  # a verdict's " (true max in [low, high)/s)"
    env.filters["pct"] = lambda v: "n/a" if v is None else ("0" if v == 0 else f"{100 * v:.2g}%")
    env.filters["signed"] = lambda v: "n/a" if v is None else f"{v:+.3g}"
    env.filters["mib"] = lambda v: "n/a" if v is None else f"{v / (1024 * 1024):,.0f}"
    return env


FIGURES = ("latency", "throughput", "batch_sweep", "payloads", "decomposition", "server_usage",
           "machine_speed")  # report.html's plots, by the names its template uses


def _figures(model: ReportModel, *, draw: bool = True) -> dict[str, str | None]:
    """Each plot as a PNG data URI (None: nothing to plot; every one None without `draw`)."""
    if not draw:
        return dict.fromkeys(FIGURES)
    cells = model.results.cells
    return {
        "latency": plots.latency_vs_load(cells, model.results.slo),
        "throughput": plots.throughput_vs_load(cells),
        "batch_sweep": plots.batch_sweep(model.sweep),
        "payloads": plots.payload_costs(model.results.payloads),
        "decomposition": plots.decomposition(model.decomposition),
        "server_usage": plots.server_usage(cells),
        "machine_speed": plots.machine_speed(model.timeline) if model.timeline is not None else None,
    }


def write_report(
    results_dir: Path | str,
    *,
    compare_with: Path | str | None = None,
    out_dir: Path | str | None = None,
    plots: bool = True,
) -> ReportPaths:
    """Read `results_dir` (and `compare_with`, the *before* side of a comparison) and write the report.

    Raises `analysis.errors.ResultsError` for missing, empty or unsupported results.
    """
    return render_report(build_model(results_dir, compare_with), out_dir, plots=plots)


def render_report(
    model: ReportModel, out_dir: Path | str | None = None, *, plots: bool = True
) -> ReportPaths:
    """Write the three views of `model` into `out_dir` (default: the results directory itself).

    `plots=False` leaves report.html's plots out (it says so): drawing them is most of a report's CPU
    time (2-3 s here), which a gate that reads only the verdicts need not spend.
    """
    out = Path(out_dir) if out_dir is not None else model.results.path
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out / "report.html", out / "summary.md", out / SUMMARY_FILE)
    document = summary_document(model)
    document.write(paths.json)
    context = {
        "m": model,
        "e": model.results,
        "doc": document,
        "rest_binary_note": REST_BINARY_NOTE,
    }
    paths.markdown.write_text(_environment(False).get_template("summary.md.j2").render(**context))
    context["figures"] = _figures(model, draw=plots)
    context["plots"] = plots
    paths.html.write_text(_environment(True).get_template("report.html.j2").render(**context))
    return paths
