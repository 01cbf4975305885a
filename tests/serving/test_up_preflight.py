"""`up` refuses to start, before starting anything, with a message that says what to do: missing
artifacts, missing Java, a busy port, an unknown server, servers already running in the state dir."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import psutil
import pytest

from models.artifacts import ArtifactLayout
from models.triton_export import MODEL_SOURCE
from serving import Ports, StackError, up


def children_now() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def fake_artifacts(tmp_path: Path) -> ArtifactLayout:
    """Files at the right places: enough for the checks, which run before anything would read them."""
    layout = ArtifactLayout(tmp_path / "artifacts")
    layout.tf_version_dir.mkdir(parents=True)
    (layout.tf_version_dir / "saved_model.pb").write_bytes(b"")
    layout.model_store.mkdir(parents=True)
    layout.mar.write_bytes(b"")
    layout.triton_version_dir.mkdir(parents=True)
    shutil.copyfile(MODEL_SOURCE, layout.triton_version_dir / "model.py")
    (layout.triton_version_dir / "weights.npy").write_bytes(b"")
    (layout.triton_model_dir / "config.pbtxt").write_text("")
    return layout


def refused(artifacts: ArtifactLayout | Path, tmp_path: Path, **kwargs: object) -> str:
    before = children_now()
    with pytest.raises(StackError) as error:
        up(artifacts, ports=kwargs.pop("ports", Ports.free()), state_dir=tmp_path / "state", **kwargs)  # type: ignore[arg-type]
    assert children_now() == before, "nothing may be started when a check fails"
    return str(error.value)


@pytest.mark.parametrize(
    ("servers", "missing"),
    [
        (("tfserving",), "tfserving/linear/1/saved_model.pb"),
        (("torchserve",), "torchserve/linear.mar"),
        (("triton",), "triton/linear/1/model.py"),
    ],
)
def test_missing_artifacts_are_named_with_the_export_command(
    tmp_path: Path, servers: tuple[str], missing: str
) -> None:
    message = refused(tmp_path / "empty", tmp_path, servers=servers)
    assert missing in message
    assert f"inferload export --out {tmp_path / 'empty'}" in message


def test_a_triton_repository_from_an_older_export_is_refused_saying_to_export_again(
    fake_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    (fake_artifacts.triton_version_dir / "model.py").write_text("# an older model.py\n")
    message = refused(fake_artifacts, tmp_path, servers=("triton",))
    assert "comes from an older export" in message
    assert f"inferload export --out {fake_artifacts.root}" in message


def test_missing_java_says_how_to_install_it(
    fake_artifacts: ArtifactLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-java-here"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    message = refused(fake_artifacts, tmp_path, servers=("torchserve",))
    assert "Java not found" in message
    assert "openjdk-17-jre-headless" in message


def test_busy_port_names_the_port_and_its_process(fake_artifacts: ArtifactLayout, tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.torchserve_grpc))
        squatter.listen()
        message = refused(fake_artifacts, tmp_path, servers=("torchserve",), ports=ports)
    assert f"port {ports.torchserve_grpc}" in message
    assert f"pid {os.getpid()}" in message


def test_every_problem_is_listed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    message = refused(tmp_path / "empty", tmp_path, servers=("tfserving", "torchserve"))
    assert message.count("\n  - ") == 3  # two artifacts and Java


def test_unknown_server_is_refused(fake_artifacts: ArtifactLayout, tmp_path: Path) -> None:
    message = refused(fake_artifacts, tmp_path, servers=("mlserver",))
    assert "choose from tfserving, torchserve, triton" in message


def test_a_running_stack_in_the_state_dir_must_be_stopped_first(
    fake_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    me = psutil.Process()
    state = tmp_path / "state"
    state.mkdir()
    server = {
        "name": "torchserve", "kind": "torchserve", "pid": me.pid, "create_time": me.create_time(),
        "ports": {}, "endpoints": {}, "log_file": "x", "workdir": "x", "tmpdir": None,
    }  # fmt: skip
    (state / "servers.json").write_text(
        json.dumps(
            {
                "schema": "inferload.servers",
                "schema_version": 1,
                "artifacts": str(fake_artifacts.root),
                "settings": {},
                "ports": Ports().to_dict(),
                "servers": {"torchserve": server},
            }
        )  # fmt: skip
    )
    message = refused(fake_artifacts, tmp_path, servers=("torchserve",))
    assert f"inferload serve down --state-dir {state}" in message


def test_asking_for_a_missing_tensorflow_model_server_suggests_tfs_compat(
    fake_artifacts: ArtifactLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving import ServerSettings

    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    message = refused(
        fake_artifacts,
        tmp_path,
        servers=("tfserving",),
        settings=ServerSettings(tfserving_kind="tensorflow_model_server"),
    )
    assert "tensorflow_model_server is not on PATH" in message
    assert "tfs-compat" in message
