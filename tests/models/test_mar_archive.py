"""linear.mar is a TorchServe archive: a zip with the handler, the weights and a MANIFEST naming them."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from models.artifacts import ArtifactLayout


def test_mar_is_a_zip_with_handler_weights_and_manifest(small_artifacts: ArtifactLayout) -> None:
    with zipfile.ZipFile(small_artifacts.mar) as archive:
        assert archive.testzip() is None
        assert {"torchserve_handler.py", "weights.npy", "MAR-INF/MANIFEST.json"} <= set(archive.namelist())


def test_manifest_names_the_model_and_its_handler(small_artifacts: ArtifactLayout) -> None:
    with zipfile.ZipFile(small_artifacts.mar) as archive:
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
    assert manifest["model"]["modelName"] == "linear"
    assert manifest["model"]["handler"] == "torchserve_handler.py"
    assert manifest["runtime"] == "python"


def test_archived_weights_are_the_spec_weights(
    small_artifacts: ArtifactLayout, small_weights: np.ndarray
) -> None:
    with zipfile.ZipFile(small_artifacts.mar) as archive:
        weights = np.load(io.BytesIO(archive.read("weights.npy")))
    assert weights.dtype == np.float32
    assert np.array_equal(weights, small_weights)
