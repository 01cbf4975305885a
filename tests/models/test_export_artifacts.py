"""export_all writes the documented layout, skips a finished export, redoes it with force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.artifacts import ArtifactLayout, ArtifactsMissingError
from models.export import export_all, handler_digest, is_current
from models.linear import LinearSpec

TINY = LinearSpec(classes=4, features=16, seed=2)


def test_layout_paths_follow_the_contract(tmp_path: Path) -> None:
    layout = ArtifactLayout(tmp_path)
    assert layout.model_json == tmp_path / "model.json"
    assert layout.tf_base_path == tmp_path / "tfserving" / "linear"
    assert layout.tf_version_dir == tmp_path / "tfserving" / "linear" / "1"
    assert layout.model_store == tmp_path / "torchserve"
    assert layout.mar == tmp_path / "torchserve" / "linear.mar"
    assert ArtifactLayout(str(tmp_path)) == layout


def test_small_export_is_complete(small_artifacts: ArtifactLayout) -> None:
    assert small_artifacts.check() is small_artifacts
    assert (small_artifacts.tf_version_dir / "saved_model.pb").is_file()
    assert small_artifacts.spec() == LinearSpec(classes=64, features=1024, seed=0)
    document = json.loads(small_artifacts.model_json.read_text())
    assert document["schema"] == "inferload.model" and document["schema_version"] == 1
    assert {"torch", "torchserve", "numpy"} <= set(document["versions"])
    assert any(name.startswith("tensorflow") for name in document["versions"])


def test_check_names_the_missing_file_and_the_command_that_creates_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactsMissingError, match=r"model\.json.*inferload export --out"):
        ArtifactLayout(tmp_path).check()


def test_second_export_is_skipped_and_force_redoes_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout = export_all(TINY, tmp_path)
    first = layout.mar.stat().st_mtime_ns, layout.model_json.read_text()
    capsys.readouterr()
    export_all(TINY, tmp_path)
    assert "skipping" in capsys.readouterr().err
    assert (layout.mar.stat().st_mtime_ns, layout.model_json.read_text()) == first
    export_all(TINY, tmp_path, force=True)
    assert "skipping" not in capsys.readouterr().err
    assert layout.mar.stat().st_mtime_ns != first[0]
    assert layout.spec() == TINY


def test_a_different_spec_is_re_exported(tmp_path: Path) -> None:
    export_all(TINY, tmp_path)
    other = LinearSpec(classes=4, features=16, seed=3)
    assert export_all(other, tmp_path).spec() == other


def test_an_export_with_a_missing_artifact_is_redone(tmp_path: Path) -> None:
    layout = export_all(TINY, tmp_path)
    layout.mar.unlink()
    export_all(TINY, tmp_path)
    assert layout.mar.is_file()


def test_an_archive_packed_with_another_handler_is_re_exported(tmp_path: Path) -> None:
    """A .mar copies the handler: an export made before a handler change must not be reused."""
    layout = export_all(TINY, tmp_path)
    document = json.loads(layout.model_json.read_text())
    assert document["handler_sha256"] == handler_digest()
    document["handler_sha256"] = "0" * 64  # as written by an older handler
    layout.model_json.write_text(json.dumps(document))
    assert not is_current(layout, TINY)
    export_all(TINY, tmp_path)
    assert is_current(layout, TINY)
