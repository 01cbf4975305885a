"""The report names which TF Serving ran: tfs-compat results are labelled as such, never as the real one."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder

from analysis import read_results
from analysis.report_model import build_model


@pytest.mark.parametrize(
    ("manifest_kind", "cell_kind", "expected_label"),
    [
        ("tfs-compat", "tfs-compat", "TF Serving API, served by tfs-compat (TensorFlow runtime)"),
        (
            "tensorflow_model_server",
            "tensorflow_model_server",
            "TensorFlow Serving (tensorflow_model_server)",
        ),
        # the manifest holds the setting ("auto"), not the kind: the cells' recorded kind wins
        ("auto", "tfs-compat", "TF Serving API, served by tfs-compat (TensorFlow runtime)"),
        ("auto", "tensorflow_model_server", "TensorFlow Serving (tensorflow_model_server)"),
    ],
)
def test_tfserving_kind_label(
    tmp_path: Path, manifest_kind: str, cell_kind: str, expected_label: str
) -> None:
    results = ResultsBuilder(tmp_path / "experiment", tfserving_kind=manifest_kind)
    results.cell(server="tfserving", protocol="grpc", tfserving_kind=cell_kind)
    assert build_model(results.root).tfserving_label == expected_label


def test_without_tfserving_cells_the_label_says_not_run(tmp_path: Path) -> None:
    results = ResultsBuilder(tmp_path / "experiment", tfserving_kind="")
    results.cell(server="torchserve")
    assert read_results(results.root).tfserving_kind is None
    assert build_model(results.root).tfserving_label == "not run"
