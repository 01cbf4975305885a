"""When one server dies during start-up, `up` names it, quotes its log, and stops everything it started."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from models.artifacts import ArtifactLayout
from serving import Ports, up
from serving.ports import is_free
from serving.processes import ServerStartError

pytestmark = pytest.mark.servers


def test_corrupt_saved_model_fails_the_start_and_leaves_nothing_running(
    small_artifacts: ArtifactLayout, tmp_path: Path
) -> None:
    layout = ArtifactLayout(tmp_path / "artifacts")
    layout.tf_version_dir.mkdir(parents=True)
    (layout.tf_version_dir / "saved_model.pb").write_bytes(b"not a SavedModel")
    layout.model_store.mkdir(parents=True)
    layout.mar.symlink_to(small_artifacts.mar)  # a good TorchServe, started alongside
    ports = Ports.free()
    state = tmp_path / "state"
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    with pytest.raises(ServerStartError) as error:
        up(layout, servers=("tfserving", "torchserve"), ports=ports, state_dir=state, timeout_s=240)

    message = str(error.value)
    assert message.startswith("tfserving exited during start-up")
    assert str(state / "tfserving" / "server.log") in message
    assert "saved_model.pb" in message  # the log tail says what was wrong
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before
    assert all(is_free(port) for port in ports.to_dict().values())
    assert not (state / "servers.json").exists()
