"""ComposeStack drives `docker compose`: which commands it issues, in which order, and how it fails.

No Docker engine runs on the test machines, so the lifecycle is checked with a fake command runner
(a test double of the `docker` CLI, recording argv and answering as the CLI would). That proves the
commands and the error handling, not that the images start: that needs an engine. The one real run
here is the engine-less machine itself: `up` must fail in seconds with what to do, never hang.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from capabilities import need

from models.artifacts import ArtifactLayout
from serving.compose import ComposeError, ComposeStack
from serving.compose_override import ComposeLimits
from serving.ports import Ports
from serving.settings import ServerSettings

COMPOSE = ["docker-compose"]


class FakeDocker:
    """Answers `docker`/`docker-compose` commands from a script; records every argv it was given."""

    def __init__(self, *, engine: bool = True, state: dict | None = None) -> None:
        self.calls: list[list[str]] = []
        self.engine = engine
        self.state = state or {"Status": "running", "Running": True, "Restarting": False, "ExitCode": 0}

    def __call__(self, argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        ok = subprocess.CompletedProcess(argv, 0, "", "")
        if argv[:2] == ["docker", "info"]:
            if not self.engine:
                return subprocess.CompletedProcess(
                    argv, 1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
                )
            return subprocess.CompletedProcess(argv, 0, "27.3.1\n", "")
        if argv[:2] == ["docker", "inspect"]:
            return subprocess.CompletedProcess(argv, 0, json.dumps(self.state), "")
        if "ps" in argv:
            if argv[-1] == "-q":  # the whole project
                running = [] if self.commands("rm") else ["id-of-tfserving", "id-of-torchserve"]
                return subprocess.CompletedProcess(argv, 0, "".join(f"{c}\n" for c in running), "")
            return subprocess.CompletedProcess(argv, 0, f"id-of-{argv[-1]}\n", "")
        if "logs" in argv:
            return subprocess.CompletedProcess(argv, 0, "Failed to start server. Error: ...\n", "")
        return ok

    def commands(self, word: str) -> list[list[str]]:
        return [argv for argv in self.calls if word in argv]


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactLayout:
    """Stand-in artifact files: only their presence is checked before compose runs."""
    layout = ArtifactLayout(tmp_path / "artifacts")
    layout.tf_version_dir.mkdir(parents=True)
    (layout.tf_version_dir / "saved_model.pb").write_bytes(b"")
    layout.mar.parent.mkdir(parents=True, exist_ok=True)
    layout.mar.write_bytes(b"")
    layout.triton_version_dir.mkdir(parents=True)
    (layout.triton_version_dir / "model.py").write_bytes(b"")
    return layout


def _stack(tmp_path: Path, artifacts: ArtifactLayout, fake: FakeDocker, **kwargs: object) -> ComposeStack:
    stack = ComposeStack(
        state_dir=tmp_path / "state",
        artifacts=artifacts,
        ports=Ports.free(),
        run=fake,
        program=COMPOSE,
        **kwargs,  # type: ignore[arg-type]
    )
    return stack


def test_up_validates_checks_the_engine_starts_and_waits(
    tmp_path: Path, artifacts: ArtifactLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDocker()
    stack = _stack(tmp_path, artifacts, fake, limits=ComposeLimits(cpus=3, memory="2g"))
    monkeypatch.setattr(stack, "_health", lambda server: None)  # the servers' own health: needs an engine
    stack.up(timeout_s=5)
    words = [next(w for w in ("config", "info", "up", "ps") if w in argv) for argv in fake.calls[:3]]
    assert words == ["config", "info", "up"]  # validate before asking the engine; the engine before up
    (up,) = fake.commands("up")
    assert up[: len(COMPOSE)] == COMPOSE
    assert up[up.index("--env-file") + 1] == str(stack.env_path)
    files = [up[i + 1] for i, arg in enumerate(up) if arg == "-f"]
    assert files == [str(stack.compose_file), str(stack.override_path)]
    assert up[up.index("-p") + 1] == stack.project
    assert up[-6:] == ["up", "-d", "--build", "tfserving", "torchserve", "triton"]
    env = dict(line.split("=", 1) for line in stack.env_path.read_text().splitlines())  # type: ignore[union-attr]
    assert (env["SERVER_CPUS"], env["SERVER_MEMORY"]) == ("3", "2g")
    assert env["TFSERVING_REST_PORT"] == str(stack.ports.tfserving_rest)


def test_only_the_chosen_services_come_up(
    tmp_path: Path, artifacts: ArtifactLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDocker()
    stack = _stack(tmp_path, artifacts, fake, servers=["torchserve"])
    monkeypatch.setattr(stack, "_health", lambda server: None)
    stack.up(timeout_s=5)
    (up,) = fake.commands("up")
    assert up[-1] == "torchserve" and "tfserving" not in up
    assert [m.name for m in stack.monitored()] == ["torchserve"]


def test_no_engine_fails_fast_before_starting_anything(tmp_path: Path, artifacts: ArtifactLayout) -> None:
    fake = FakeDocker(engine=False)
    stack = _stack(tmp_path, artifacts, fake)
    with pytest.raises(ComposeError, match=r"no Docker engine is reachable .*Cannot connect.*start it"):
        stack.up(timeout_s=300)
    assert fake.commands("up") == []


def test_a_container_that_exits_during_start_up_fails_with_its_log_and_is_taken_down(
    tmp_path: Path, artifacts: ArtifactLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDocker(state={"Status": "exited", "Running": False, "Restarting": False, "ExitCode": 255})
    stack = _stack(tmp_path, artifacts, fake)
    monkeypatch.setattr(stack, "_health", lambda server: "model 'linear' to be AVAILABLE")
    with pytest.raises(ComposeError, match=r"(?s)stopped during start-up \(exit code 255\).*Failed to start"):
        stack.up(timeout_s=60)
    assert fake.commands("rm") and fake.commands("down")  # cleaned up after the failed start


def test_health_timeout_names_what_each_server_still_waits_for(
    tmp_path: Path, artifacts: ArtifactLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDocker()
    stack = _stack(tmp_path, artifacts, fake)
    monkeypatch.setattr(stack, "_health", lambda server: f"{server}'s model to load")
    started = time.monotonic()
    with pytest.raises(
        ComposeError, match=r"(?s)not healthy after 1 s.*tfserving: waiting for tfserving's model"
    ):
        stack.up(timeout_s=1)
    assert time.monotonic() - started < 30
    assert fake.commands("down")


def test_missing_artifacts_and_tfs_compat_are_refused_before_compose_runs(tmp_path: Path) -> None:
    fake = FakeDocker()
    stack = ComposeStack(
        state_dir=tmp_path / "state",
        artifacts=tmp_path / "nothing",
        settings=ServerSettings(tfserving_kind="tfs-compat"),
        ports=Ports.free(),
        run=fake,
        program=COMPOSE,
    )
    with pytest.raises(ComposeError) as caught:
        stack.up()
    message = str(caught.value)
    assert "inferload export --out" in message and "cannot run under compose" in message
    assert fake.calls == []


def test_endpoints_and_monitored_servers_name_ports_and_containers(
    tmp_path: Path, artifacts: ArtifactLayout
) -> None:
    fake = FakeDocker()
    stack = _stack(tmp_path, artifacts, fake)
    ports = stack.ports
    assert stack.endpoints("tfserving") == {
        "rest": f"http://127.0.0.1:{ports.tfserving_rest}",
        "grpc": f"127.0.0.1:{ports.tfserving_grpc}",
        "metrics": f"http://127.0.0.1:{ports.tfserving_rest}/monitoring/prometheus/metrics",
    }
    assert stack.endpoints("torchserve")["metrics"] == f"http://127.0.0.1:{ports.torchserve_metrics}/metrics"
    assert stack.endpoints("triton") == {
        "rest": f"http://127.0.0.1:{ports.triton_http}",
        "grpc": f"127.0.0.1:{ports.triton_grpc}",
        "metrics": f"http://127.0.0.1:{ports.triton_metrics}/metrics",
    }
    monitored = {m.name: m for m in stack.monitored()}
    assert monitored["tfserving"].kind == "tensorflow_model_server"
    assert monitored["torchserve"].container == "id-of-torchserve"
    assert monitored["tfserving"].pid is None


@pytest.mark.parametrize(
    ("state", "alive"),
    [
        ({"Status": "running", "Running": True, "Restarting": False}, True),
        ({"Status": "restarting", "Running": True, "Restarting": True}, False),
        ({"Status": "exited", "Running": False, "Restarting": False}, False),
    ],
)
def test_alive_means_running_and_not_restarting(
    tmp_path: Path, artifacts: ArtifactLayout, state: dict, alive: bool
) -> None:
    stack = _stack(tmp_path, artifacts, FakeDocker(state=state))
    assert stack.alive("tfserving") is alive


def test_down_removes_only_its_own_services_and_the_network_with_the_last(
    tmp_path: Path, artifacts: ArtifactLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDocker()
    stack = _stack(tmp_path, artifacts, fake, servers=["torchserve"], project="shared")
    monkeypatch.setattr(stack, "_health", lambda server: None)
    stack.up(timeout_s=5)
    assert stack.down() == ["torchserve"]
    (rm,) = fake.commands("rm")
    assert rm[-5:] == ["rm", "--stop", "--force", "-v", "torchserve"]
    assert rm[rm.index("-p") + 1] == "shared"
    assert fake.commands("down")  # nothing else was left in the project


def test_down_before_up_does_nothing(tmp_path: Path, artifacts: ArtifactLayout) -> None:
    fake = FakeDocker()
    assert _stack(tmp_path, artifacts, fake).down() == []
    assert fake.calls == []


def test_on_a_machine_without_an_engine_up_fails_in_seconds(
    tmp_path: Path, artifacts: ArtifactLayout
) -> None:
    """The real docker CLI and docker-compose, no fake: only meaningful where no engine runs."""
    if shutil.which("docker") is None:
        need("compose")  # docker-compose alone also finds no engine
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    ):
        pytest.skip("a Docker engine answers here: this test is about machines without one")
    stack = ComposeStack(state_dir=tmp_path / "state", artifacts=artifacts, ports=Ports.free())
    started = time.monotonic()
    with pytest.raises(ComposeError, match="start it|not installed"):
        stack.up(timeout_s=600)
    assert time.monotonic() - started < 60
