"""The runner's side of targets, with the heavy parts replaced by fakes (a unit test of the runner):
compose brings a ComposeStack up per server config and tears it down; an external target is never
started or stopped, a server of it that dies fails its cells and the matrix goes on; each cell.json
and the manifest record the target."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pass_through_stages import PassThroughStages

from inferload.cells import Cell, expand_cells
from inferload.experiments import Experiment, ServerConfig, parse_experiment
from inferload.runner import run_experiment
from inferload.targets import ComposeDriver, Endpoint, ExternalDriver
from serving.ports import Ports

REPO = Path(__file__).resolve().parents[2]
MATRIX = f"""\
name: targets
model: {{classes: 4, features: 8, seed: 0}}
servers: [tfserving, torchserve]
protocols: [rest-json, grpc]
load: {{mode: open, rates: [10]}}
batch_sizes: [1]
server_configs:
  - name: small
  - name: batched
    torchserve: {{batch_size: 4}}
    tfserving: {{batching: true}}
warmup_s: 0
duration_s: 1
target: {{kind: compose, file: {REPO / "docker-compose.yml"}, cpus: 3}}
"""
EXTERNAL = MATRIX.split("target:")[0] + """\
target:
  kind: external
  servers:
    tfserving: {rest: "http://198.18.9.2:9501", grpc: "198.18.9.2:9500", kind: tensorflow_model_server}
    torchserve:
      rest: http://198.18.9.2:9080
      grpc: 198.18.9.2:9070
      management: http://198.18.9.2:9081
"""


@dataclass
class RecordingStages(PassThroughStages):
    """Records what the runner asks for; any server start is a failure of these tests."""

    loads: list[dict[str, Any]] = field(default_factory=list)
    exports: int = 0

    def prepare_artifacts(self, spec: Any, root: Path) -> None:
        self.exports += 1

    def measure_floor(self, root: Path, batches: tuple[int, ...], out_path: Path) -> None:
        out_path.write_text("{}")

    def start_server(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a compose or external target must not start local servers")

    def server_kind(self, servers: Any, server: str) -> str | None:
        return getattr(servers, "tfserving_kind", None) if server == "tfserving" else None

    @contextlib.contextmanager
    def monitor(self, servers: Any, out_path: Path) -> Iterator[None]:
        self.monitored = servers.monitored()
        yield

    def run_load(self, settings: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        self.loads.append(settings)
        return {"sent": 10}


@dataclass
class FakeComposeStack:
    """Stands in for serving.compose.ComposeStack: records its arguments, up() and down()."""

    kwargs: dict[str, Any]
    ups: int = 0
    downs: int = 0

    def up(self) -> FakeComposeStack:
        self.ups += 1
        return self

    def alive(self, server: str) -> bool:
        return self.downs == 0

    def down(self) -> list[str]:
        self.downs += 1
        return list(self.kwargs["servers"])

    def monitored(self) -> list[Any]:
        return []


def test_compose_brings_each_config_up_once_per_server_and_tears_it_down(tmp_path: Path) -> None:
    experiment = parse_experiment(MATRIX)
    stacks: list[FakeComposeStack] = []

    def factory(**kwargs: Any) -> FakeComposeStack:
        stacks.append(FakeComposeStack(kwargs))
        return stacks[-1]

    stages = RecordingStages()
    ports = Ports.free()
    result = run_experiment(experiment, tmp_path, progress=False, artifacts_dir=tmp_path / "art", ports=ports,
                            stages=stages, target=ComposeDriver(experiment.target, factory))  # type: ignore[arg-type]
    assert result.failed == () and len(result.done) == 8
    assert stages.exports == 1  # compose mounts our export
    brought_up = [(s.kwargs["settings"].torchserve_batch_size, s.kwargs["settings"].tfserving_batching,
                   tuple(s.kwargs["servers"])) for s in stacks]
    assert brought_up == [(1, False, ("tfserving",)), (1, False, ("torchserve",)),
                          (4, True, ("tfserving",)), (4, True, ("torchserve",))]
    assert all(s.ups == 1 and s.downs == 1 for s in stacks)
    assert {s.kwargs["limits"].cpus for s in stacks} == {3}
    assert {Path(s.kwargs["compose_file"]) for s in stacks} == {REPO / "docker-compose.yml"}
    assert {(load["host"], load["port"]) for load in stages.loads} == {
        ("127.0.0.1", ports.tfserving_rest), ("127.0.0.1", ports.tfserving_grpc),
        ("127.0.0.1", ports.torchserve_inference), ("127.0.0.1", ports.torchserve_grpc)}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["target"]["kind"] == "compose" and manifest["target"]["cpus"] == 3


class ScriptedExternalDriver(ExternalDriver):
    """The real ExternalDriver with its network checks scripted: which (config, server) is down when
    its group starts, and which cells find the served model gone."""

    def __init__(
        self, experiment: Experiment, dead_groups: set[tuple[str, str]], dead_cells: set[str]
    ) -> None:
        super().__init__(experiment.target)  # type: ignore[arg-type]
        self.dead_groups, self.dead_cells = dead_groups, dead_cells
        self.brought_up: list[ScriptedServers] = []

    def check(self, experiment: Experiment) -> None:
        pass  # the checks themselves run against real servers in test_target_bad_input.py

    def bring_up(self, server: str, config: ServerConfig, **kwargs: Any) -> Any:
        if (config.name, server) in self.dead_groups:
            raise RuntimeError(f"{server} does not answer at http://198.18.9.2 (connection refused)")
        self.brought_up.append(ScriptedServers())
        return self.brought_up[-1]

    def before_cell(self, servers: Any, cell: Cell, experiment: Experiment) -> str | None:
        if cell.cell_id in self.dead_cells:
            return f"{cell.server}: nothing answers (connection refused)"
        return None


@dataclass
class ScriptedServers:
    downs: int = 0
    tfserving_kind: str = "tensorflow_model_server"

    def alive(self, server: str) -> bool:
        return True

    def down(self) -> list[str]:
        self.downs += 1
        return []  # like ExternalServers: never stops anything

    def monitored(self) -> list[Any]:
        return []


def test_an_external_server_that_dies_fails_its_cells_and_the_matrix_goes_on_without_restarts(
    tmp_path: Path,
) -> None:
    experiment = parse_experiment(EXTERNAL)
    ids = [cell.cell_id for cell in expand_cells(experiment).cells]
    assert ids[2].startswith("torchserve") and "small" in ids[2] and ids[5].startswith("tfserving")
    driver = ScriptedExternalDriver(experiment, dead_groups={("small", "torchserve")}, dead_cells={ids[5]})
    stages = RecordingStages()
    result = run_experiment(experiment, tmp_path, progress=False, artifacts_dir=tmp_path / "art",
                            ports=Ports.free(), stages=stages, target=driver)
    assert stages.exports == 0  # an external target serves its own model: nothing exported here
    assert not (tmp_path / "floor.json").exists()  # and this machine's floor says nothing about it
    assert set(result.failed) == {ids[2], ids[3], ids[5]}
    assert set(result.done) == set(ids) - {ids[2], ids[3], ids[5]}
    unreachable = json.loads((tmp_path / "cells" / ids[2] / "cell.json").read_text())
    assert "never restarts an external server" in unreachable["error"]
    assert "connection refused" in unreachable["error"]
    gone = json.loads((tmp_path / "cells" / ids[5] / "cell.json").read_text())
    assert gone["status"] == "failed" and "nothing answers" in gone["error"]
    done = json.loads((tmp_path / "cells" / ids[0] / "cell.json").read_text())
    assert done["target"] == {"kind": "external", "host": "198.18.9.2", "port": 9501,
                              "metadata_url": "http://198.18.9.2:9501"}
    assert ("198.18.9.2", 9070, "http://198.18.9.2:9081") in [  # torchserve grpc of `batched`
        (load["host"], load["port"], load["metadata_url"]) for load in stages.loads]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["target"]["kind"] == "external"
    assert manifest["tfserving_kind"] == "tensorflow_model_server"  # the user's label


def test_an_endpoint_describes_itself_for_cell_json() -> None:
    assert Endpoint("::1", 8500, None).describe() == {"host": "::1", "port": 8500, "metadata_url": None}
