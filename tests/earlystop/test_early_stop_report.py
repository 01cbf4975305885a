"""The report states the stopping rule when the matrix used it, and per cell how long it measured and
why it ended; load.json keeps the outcome (version 2) and version-1 files still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import write_report
from inferload_formats import Manifest, write_cell, write_manifest
from loadtest import (
    EarlyStopOutcome,
    LoadSettings,
    LoadSummary,
    RecordWriter,
    RequestRecord,
    RunHeader,
    read_run,
)
from loadtest._early_stop import StopInterval
from loadtest._summary import summarize

S = 1_000_000_000
MS = 1_000_000
START = 1_000 * S
RULE = {"interval_within": 0.1, "max_duration_s": 120.0}


def write_cell_run(root: Path, cell_id: str, rate: float, window_s: float,
                   outcome: EarlyStopOutcome | None) -> None:
    run_dir = root / "cells" / cell_id
    run_dir.mkdir(parents=True)
    settings = LoadSettings(server="torchserve", protocol="grpc", rate=rate, duration_s=20.0, features=8,
                            run=cell_id, early_stop=None if outcome is None else {**RULE, "percentile": 99.0})
    header = RunHeader(run=cell_id, stream=0, settings={**settings.resolved(), "streams": 1},
                       measure_start_ns=START, measure_end_ns=START + round(window_s * S))
    with RecordWriter(run_dir / "requests.0.jsonl", header) as writer:
        for k in range(round(rate * window_s)):
            at = START + round(k * S / rate)
            writer.add(RequestRecord(seq=k, stream=0, server="torchserve", protocol="grpc", batch=1,
                                     scheduled_ns=at, sent_ns=at, done_ns=at + (10 + k % 3) * MS, bytes_out=1,
                                     bytes_in=1, status="ok", code=0, error=None))
    summary = summarize(settings, read_run(run_dir), cpu_percent=[5.0], interrupted=False, early_stop=outcome)
    summary.write(run_dir / "load.json")
    write_cell(run_dir, {"cell_id": cell_id, "status": "done", "error": None, "server": "torchserve",
                         "protocol": "grpc", "mode": "open", "rate": rate, "concurrency": None, "batch": 1,
                         "server_config": {}, "server_config_name": "default", "repetition": 0,
                         "tfserving_kind": None})


def outcome(measured_s: float, reason: str, high_ms: float | None) -> EarlyStopOutcome:
    return EarlyStopOutcome(percentile=99.0, interval_within=0.1, min_duration_s=20.0, max_duration_s=120.0,
                            measured_s=measured_s, reason=reason, checks=1 if reason == "rule" else 100,  # type: ignore[arg-type]
                            at_stop=StopInterval(p=99.0, n=1000, in_flight=0, value_ms=12.0, low_ms=11.0,
                                                 high_ms=high_ms))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "es"
    root.mkdir()
    write_manifest(root / "manifest.json", Manifest(
        name="es", experiment={"duration_s": 20.0, "early_stop": RULE},
        slo={"percentile": 99.0, "latency_ms": 100.0},  # type: ignore[arg-type]
        model={"classes": 4, "features": 8, "seed": 0},  # type: ignore[arg-type]
        seeds={"experiment": 0, "model": 0}, tfserving_kind="tfs-compat", versions={}, machine={},
        artifacts="a", created_at="2026-12-01T00:00:00Z"))
    write_cell_run(root, "torchserve-grpc-b1-default-r50-rep0", 50.0, 20.0, outcome(20.0, "rule", 12.9))
    write_cell_run(root, "torchserve-grpc-b1-default-r20-rep0", 20.0, 120.0, outcome(120.0, "cap", None))
    return root


def test_the_summary_states_the_rule_and_each_cells_duration_and_reason(results: Path) -> None:
    text = write_report(results, plots=False).markdown.read_text()
    assert ("Cells ran >= 20 s and until the p99's 95% interval was within ±10% of it, at most 120 s"
            in text), text
    assert ("| torchserve-grpc-b1-default-r50-rep0 | 0 | 20.0 s, stopped by the rule "
            "(p99 12.0 ms [11.0, 12.9]") in text
    assert ("| torchserve-grpc-b1-default-r20-rep0 | 0 | 120.0 s, ran to the cap "
            "(p99 12.0 ms [11.0, open]") in text


def test_the_html_report_and_summary_json_carry_it_too(results: Path) -> None:
    paths = write_report(results, plots=False)
    html = paths.html.read_text()
    assert "Early stopping" in html and "at most 120 s" in html and "ran to the cap" in html
    document = json.loads(paths.json.read_text())
    assert document["schema_version"] == 7  # 3 added early_stop; 5 reshaped runs
    early = document["early_stop"]
    assert early["rule"].startswith("cells ran >= 20 s")
    by_cell = {run["cell_id"]: run for run in early["runs"]}
    assert by_cell["torchserve-grpc-b1-default-r50-rep0"]["reason"] == "rule"
    assert by_cell["torchserve-grpc-b1-default-r20-rep0"]["measured_s"] == 120.0
    windows = {run["cell_id"]: run["stats"]["window_s"] for run in document["runs"]}
    assert windows["torchserve-grpc-b1-default-r20-rep0"] == pytest.approx(120.0)


def test_a_matrix_without_the_rule_says_nothing_about_it(results: Path, tmp_path: Path) -> None:
    root = tmp_path / "fixed"
    root.mkdir()
    write_manifest(root / "manifest.json", Manifest.model_validate(
        {**json.loads((results / "manifest.json").read_text()), "experiment": {"duration_s": 20.0}}))
    write_cell_run(root, "torchserve-grpc-b1-default-r50-rep0", 50.0, 20.0, None)
    paths = write_report(root, plots=False)
    assert "Early stopping" not in paths.markdown.read_text()
    assert json.loads(paths.json.read_text())["early_stop"] is None


def test_load_json_version_1_still_reads_as_a_run_without_the_rule(results: Path) -> None:
    path = results / "cells" / "torchserve-grpc-b1-default-r50-rep0" / "load.json"
    document = json.loads(path.read_text())
    assert document["schema_version"] == 2 and document["early_stop"]["reason"] == "rule"
    del document["early_stop"]
    path.write_text(json.dumps({**document, "schema_version": 1}))
    assert LoadSummary.read(path).early_stop is None
