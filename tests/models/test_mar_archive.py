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


def test_an_export_leaves_other_exports_staging_alone(tmp_path, monkeypatch) -> None:
    """torch-model-archiver stages in gettempdir()/linear and deletes it first: an export running
    beside another (two test workers, two users) must not use that shared directory."""
    import tempfile

    from models.linear import LinearSpec
    from models.mar_export import export_mar

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    others = tmp_path / "linear"  # where the archiver would stage: another export's files
    others.mkdir()
    (others / "weights.npy").write_bytes(b"another export's")
    spec = LinearSpec(classes=2, features=4, seed=0)
    mar = export_mar(spec, spec.weights(), tmp_path / "store")
    assert zipfile.is_zipfile(mar)
    assert (others / "weights.npy").read_bytes() == b"another export's"
    assert tempfile.tempdir == str(tmp_path)  # restored
