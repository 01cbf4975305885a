"""`inferload export` writes Triton's model repository: config.pbtxt, model.py (the source, byte for byte)
and the weights; a repository from an older export is stale and exported again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.artifacts import ArtifactLayout
from models.export import export_all, is_current
from models.linear import LinearSpec
from models.triton_export import MODEL_SOURCE, model_config

TINY = LinearSpec(classes=4, features=16, seed=2)


def test_the_repository_holds_the_config_the_model_and_the_spec_s_weights(
    small_artifacts: ArtifactLayout,
) -> None:
    layout = small_artifacts
    assert layout.triton_repository == layout.root / "triton"
    assert (layout.triton_version_dir / "model.py").read_bytes() == MODEL_SOURCE.read_bytes()
    np.testing.assert_array_equal(np.load(layout.triton_version_dir / "weights.npy"), layout.spec().weights())
    config = (layout.triton_model_dir / "config.pbtxt").read_text()
    assert 'backend: "python"' in config and "dims: [ 1024 ]" in config and "dims: [ 64 ]" in config
    assert "EXECUTION_ENV_PATH" not in config, "the exported config must load in the official image too"


def test_a_changed_model_py_makes_the_export_stale_and_a_new_export_redoes_it(tmp_path: Path) -> None:
    layout = export_all(TINY, tmp_path)
    assert is_current(layout, TINY)
    copied = layout.triton_version_dir / "model.py"
    copied.write_text(copied.read_text() + "\n# from an older inferload\n")
    assert not is_current(layout, TINY)
    export_all(TINY, tmp_path)
    assert copied.read_bytes() == MODEL_SOURCE.read_bytes()
    assert is_current(layout, TINY)


def test_an_export_from_before_triton_is_stale(tmp_path: Path) -> None:
    layout = export_all(TINY, tmp_path)
    for path in sorted(layout.triton_repository.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert not is_current(layout, TINY)


@pytest.mark.parametrize(
    ("options", "wanted", "unwanted"),
    [
        ({}, ["max_batch_size: 1024", "count: 1 kind: KIND_CPU"], ["dynamic_batching", "response_cache"]),
        (
            {"dynamic_batching": True, "max_queue_delay_us": 2000, "preferred_batch_sizes": (4, 8)},
            ["dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 2000 }"],
            ["response_cache"],
        ),
        ({"response_cache": True, "instances": 2}, ["response_cache { enable: true }", "count: 2"], []),
        ({"execution_env": "/env/with space"}, ['key: "EXECUTION_ENV_PATH"', '"/env/with space"'], []),
    ],
)
def test_model_config_renders_each_server_setting(
    options: dict[str, object], wanted: list[str], unwanted: list[str]
) -> None:
    config = model_config(classes=64, features=1024, **options)  # type: ignore[arg-type]
    for text in wanted:
        assert text in config
    for text in unwanted:
        assert text not in config
