"""The report says where servers and load ran: the manifest's CPU sets, or that none were recorded."""

from __future__ import annotations

import json
from pathlib import Path

from synthetic_results import ResultsBuilder

from analysis.report import write_report
from analysis.report_model import build_model
from serving.cpusets import CpuPlan


def with_cpus(results: ResultsBuilder, plan: CpuPlan) -> None:
    path = results.root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["cpus"] = plan.describe()  # as inferload/runner.py records it
    path.write_text(json.dumps(manifest))


def test_pinned_sets_are_shown_in_the_report_and_summaries(tmp_path: Path) -> None:
    results = ResultsBuilder(tmp_path / "experiment")
    results.cell(server="torchserve", protocol="grpc")
    with_cpus(results, CpuPlan(servers=(0,), load=(1,), source="given"))

    description = build_model(results.root).cpu_sets_description
    assert description.startswith("servers: 0 · load: 1 (as the matrix says; machine offers ")
    paths = write_report(results.root, plots=False)
    assert "CPU sets: servers: 0 · load: 1" in Path(paths.markdown).read_text()
    assert "<th>CPU sets</th><td>servers: 0 · load: 1" in Path(paths.html).read_text()
    assert json.loads(Path(paths.json).read_text())["cpus"]["servers"] == "0"


def test_unpinned_and_unrecorded_runs_say_so(tmp_path: Path) -> None:
    results = ResultsBuilder(tmp_path / "experiment")
    results.cell(server="torchserve", protocol="grpc")
    assert build_model(results.root).cpu_sets_description == "not recorded"
    with_cpus(results, CpuPlan(servers=None, load=None, source="none"))
    unpinned = build_model(results.root).cpu_sets_description
    assert unpinned.startswith("servers: any CPU · load: any CPU (unpinned")
