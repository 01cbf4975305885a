"""`inferload report RESULTS_DIR [--compare DIR] [--out DIR]`: where it wrote, the verdicts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder

from inferload.cli import main


def test_prints_paths_and_verdict_lines(results: ResultsBuilder, capsys: pytest.CaptureFixture[str]) -> None:
    for rate, p99 in [(10, 5.0), (20, 50.0), (40, 500.0)]:
        results.cell(rate=rate, latency_ms=p99)
    assert main(["report", str(results.root)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {results.root / 'report.html'}" in out
    assert f"wrote {results.root / 'summary.json'}" in out
    assert "torchserve grpc [default] batch 1: max 20/s under the SLO" in out
    assert "best: torchserve grpc [default] batch 1" in out


def test_prints_the_best_batch_of_a_closed_loop_sweep(
    results: ResultsBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batch 1: 100 req/s = 100 predictions/s; batch 8: 100 req/s x 8 = 800 predictions/s -> batch 8."""
    results.cell(rate=None, concurrency=1, batch=1, latency_ms=2.0)
    results.cell(rate=None, concurrency=1, batch=8, latency_ms=5.0)
    assert main(["report", str(results.root)]) == 0
    out = capsys.readouterr().out
    assert "batch sweep torchserve grpc, concurrency 1: most predictions/s 800 [800–800] at batch 8" in out


def test_out_and_compare(results: ResultsBuilder, tmp_path: Path) -> None:
    results.cell(rate=10, latency_ms=5.0)
    out = tmp_path / "out"
    assert main(["report", str(results.root), "--compare", str(results.root), "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["comparison"]["p99_ms"][0]["delta"] == 0.0


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        ("missing", "no such results directory"),
        ("empty", "the directory is empty"),
        ("newer",
         "format version 3; this inferload reads version 1 or 2: it was written by a newer inferload"),
    ],
)
def test_bad_results_directories_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prepare: str, message: str
) -> None:
    root = tmp_path / "results"
    if prepare == "empty":
        root.mkdir()
    elif prepare == "newer":
        ResultsBuilder(root).cell()
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["schema_version"] = 3
        (root / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inferload report: error: ")
    assert message in err
    assert "Traceback" not in err
