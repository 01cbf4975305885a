"""Unknown or newer formats are refused, naming the file, the version found and the one supported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder, evenly, write_run

from analysis import ResultsError, read_results, summarize_run
from analysis.stats import Slo


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            3,
            r"requests.jsonl: inferload.requests format version 3; this inferload reads version 1 or 2: "
            r"it was written by a newer inferload: upgrade",
        ),
        (0, r"format version 0; this inferload reads version 1 or 2: re-run it with this inferload"),
    ],
)
def test_records_of_another_version_are_refused(tmp_path: Path, version: int, expected: str) -> None:
    run_dir = write_run(tmp_path / "run", evenly(10, 1.0), schema_version=version)
    with pytest.raises(ResultsError, match=expected):
        summarize_run(run_dir, Slo())


def test_records_without_a_header_are_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "requests.jsonl").write_text(json.dumps({"seq": 0, "status": "ok"}) + "\n")
    with pytest.raises(ResultsError, match="requests.jsonl: no format header"):
        summarize_run(run_dir, Slo())


def test_a_newer_manifest_is_refused(results: ResultsBuilder) -> None:
    results.cell()
    manifest = json.loads((results.root / "manifest.json").read_text())
    manifest["schema_version"] = 3
    (results.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ResultsError,
        match=r"manifest.json: inferload.experiment format version 3; this inferload reads version 1",
    ):
        read_results(results.root)


def test_a_newer_side_file_is_refused(results: ResultsBuilder) -> None:
    run_dir = results.cell()
    (run_dir / "load.json").write_text(
        json.dumps({"schema": "inferload.load", "schema_version": 3, "valid": True})
    )
    with pytest.raises(ResultsError, match=r"load.json: inferload.load format version 3"):
        read_results(results.root)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: None, "no such results directory"),
        (lambda root: root.mkdir(), "the directory is empty"),
        (lambda root: (root.mkdir(), (root / "notes.txt").write_text("x")), "neither manifest.json"),
        (lambda root: (root.parent.mkdir(exist_ok=True), root.write_text("x")), "not a directory"),
    ],
    ids=["missing", "empty", "unrelated files", "a file"],
)
def test_missing_empty_or_foreign_directories_get_a_clear_error(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "results" / "x"
    root.parent.mkdir(exist_ok=True)
    make(root)
    with pytest.raises(ResultsError, match=expected):
        read_results(root)


def test_an_experiment_without_cells_gets_a_clear_error(results: ResultsBuilder) -> None:
    with pytest.raises(ResultsError, match="has no cells yet"):
        read_results(results.root)


def test_a_torn_last_line_from_an_interrupted_run_is_ignored(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", evenly(100, 1.0))
    with (run_dir / "requests.jsonl").open("a") as handle:
        handle.write('{"seq": 100, "stream": 0, "ser')
    assert summarize_run(run_dir, Slo()).measured.scheduled == 100
