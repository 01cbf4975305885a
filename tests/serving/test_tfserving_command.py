"""TF Serving: which kind runs, its command line (same flags for both kinds) and the batching file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixed_ports import FIXED_PORTS

from serving import tfserving
from serving.settings import ServerSettings


@pytest.mark.parametrize(
    ("requested", "on_path", "expected"),
    [
        ("auto", True, "tensorflow_model_server"),
        ("auto", False, "tfs-compat"),
        ("tfs-compat", True, "tfs-compat"),
        ("tensorflow_model_server", True, "tensorflow_model_server"),
    ],
)
def test_kind_resolution(
    monkeypatch: pytest.MonkeyPatch, requested: str, on_path: bool, expected: str
) -> None:
    monkeypatch.setattr(tfserving.shutil, "which", lambda name: "/usr/bin/x" if on_path else None)
    assert tfserving.resolve_kind(requested) == expected


def test_asking_for_the_missing_real_binary_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tfserving.shutil, "which", lambda name: None)
    with pytest.raises(tfserving.TfServingUnavailableError, match="not on PATH.*tfs-compat"):
        tfserving.resolve_kind("tensorflow_model_server")


def test_batching_parameters_file_is_text_proto() -> None:
    settings = ServerSettings(
        tfserving_max_batch_size=16, tfserving_batch_timeout_us=500, tfserving_num_batch_threads=4
    )
    assert tfserving.batching_parameters(settings) == (
        "max_batch_size { value: 16 }\n"
        "batch_timeout_micros { value: 500 }\n"
        "num_batch_threads { value: 4 }\n"
        "max_enqueued_batches { value: 1000 }\n"
    )


@pytest.mark.parametrize("kind", ["tfs-compat", "tensorflow_model_server"])
def test_both_kinds_get_the_tf_serving_flags(kind: str, tmp_path: Path) -> None:
    argv = tfserving.command(
        kind,  # type: ignore[arg-type]
        base_path=tmp_path / "linear",
        ports=FIXED_PORTS,
        batching_file=tmp_path / "b.txt",
        monitoring_file=tmp_path / "m.config",
    )
    assert "--port=1000" in argv
    assert "--rest_api_port=1001" in argv
    assert "--model_name=linear" in argv
    assert f"--model_base_path={(tmp_path / 'linear').resolve()}" in argv
    assert "--enable_batching=true" in argv
    assert f"--batching_parameters_file={(tmp_path / 'b.txt').resolve()}" in argv


def test_only_tfs_compat_is_told_to_bind_loopback(tmp_path: Path) -> None:
    compat = tfserving.command(
        "tfs-compat", base_path=tmp_path, ports=FIXED_PORTS, batching_file=None, monitoring_file=None
    )
    real = tfserving.command(
        "tensorflow_model_server",
        base_path=tmp_path,
        ports=FIXED_PORTS,
        batching_file=None,
        monitoring_file=None,
    )
    assert compat[1:3] == ("-m", "serving.tfs_compat")
    assert "--host=127.0.0.1" in compat
    assert not any(arg.startswith("--host") for arg in real)
    assert not any(arg.startswith("--enable_batching") for arg in compat + real)


def test_launch_writes_batching_file_only_when_batching(tmp_path: Path) -> None:
    from models.artifacts import ArtifactLayout

    layout = ArtifactLayout(tmp_path)
    off = tfserving.launch_spec(
        layout, kind="tfs-compat", settings=ServerSettings(), ports=FIXED_PORTS, workdir=tmp_path / "a"
    )
    on = tfserving.launch_spec(
        layout,
        kind="tfs-compat",
        settings=ServerSettings(tfserving_batching=True),
        ports=FIXED_PORTS,
        workdir=tmp_path / "b",
    )
    assert not (tmp_path / "a" / "batching_parameters.txt").exists()
    assert (tmp_path / "b" / "batching_parameters.txt").read_text().startswith("max_batch_size { value: 32 }")
    assert "--enable_batching=true" in on.argv and "--enable_batching=true" not in off.argv
