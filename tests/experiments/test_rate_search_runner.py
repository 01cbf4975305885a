"""The runner drives a max-rate search on running servers (heavy stages faked, a unit test of the runner):
every step is a cell of the results directory, the server starts once per group (not per step) and is
restarted only when it died, and a rerun reuses the recorded steps."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pass_through_stages import PassThroughStages

from inferload.experiments import Experiment, ModelSpec, ServerConfig, parse_experiment
from inferload.runner import run_experiment
from inferload.search import FAILED, MET, MISSED, Judgement
from serving.ports import Ports

MATRIX = """\
name: search
model: {classes: 4, features: 8, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, grpc]
load: {mode: open, search: {start: 10, factor: 2, max: 160, bisect_steps: 2}}
batch_sizes: [1]
warmup_s: 0
duration_s: 1
"""
EXPERIMENT = parse_experiment(MATRIX)
CAPACITY = {"rest-json": 25.0, "grpc": 100.0}  # simulated: met up to this rate


@dataclass
class FakeServers:
    server: str
    running: bool = True

    def alive(self, server: str) -> bool:
        return self.running and server == self.server

    def down(self) -> None:
        self.running = False

    def monitored(self) -> list[Any]:
        return []


@dataclass
class FakeStages(PassThroughStages):
    kill_server_at: str | None = None
    started: list[str] = field(default_factory=list)
    loads: list[tuple[str, float]] = field(default_factory=list)
    servers: list[FakeServers] = field(default_factory=list)

    def prepare_artifacts(self, spec: ModelSpec, root: Path) -> None:
        pass

    def measure_floor(self, root: Path, batches: tuple[int, ...], out_path: Path) -> None:
        pass

    def start_server(self, server: str, config: ServerConfig, **_: Any) -> FakeServers:
        self.started.append(server)
        self.servers.append(FakeServers(server))
        return self.servers[-1]

    def server_kind(self, servers: Any, server: str) -> str | None:
        return "tfs-compat" if server == "tfserving" else None

    @contextlib.contextmanager
    def monitor(self, servers: Any, out_path: Path) -> Iterator[None]:
        yield

    def run_load(self, settings: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        self.loads.append((settings["run"], settings["duration_s"]))
        if settings["run"] == self.kill_server_at:
            self.servers[-1].running = False
        return {"sent": 1}


def judge(step_dir: Path) -> Judgement:
    """The simulated SLO check: a failed cell is failed, else met up to the protocol's capacity."""
    cell = json.loads((step_dir / "cell.json").read_text())
    if cell["status"] != "done":
        return Judgement(FAILED, cell["error"])
    return Judgement(MET if cell["rate"] <= CAPACITY[cell["protocol"]] else MISSED)


def run(out: Path, stages: FakeStages, experiment: Experiment = EXPERIMENT):
    return run_experiment(experiment, out, progress=False, artifacts_dir=out / "artifacts",
                          ports=Ports.free(), stages=stages, judge=judge, measure_floor=False)


def rates_run(stages: FakeStages, server: str, protocol: str) -> list[float]:
    prefix = f"{server}-{protocol}-b1-default-r"
    return [float(cell_id.removeprefix(prefix).split("-")[0]) for cell_id, _ in stages.loads
            if cell_id.startswith(prefix)]


def test_each_line_is_searched_on_one_server_start_per_group(tmp_path: Path) -> None:
    stages = FakeStages()
    result = run(tmp_path, stages)
    assert stages.started == ["tfserving", "torchserve"]  # never restarted per step
    assert rates_run(stages, "tfserving", "rest-json") == [10, 20, 40, 30, 25]
    assert rates_run(stages, "torchserve", "grpc") == [10, 20, 40, 80, 160, 120, 100]
    assert result.ok and len(result.done) == len(stages.loads)
    cell = json.loads((tmp_path / "cells" / "torchserve-grpc-b1-default-r160-rep0" / "cell.json").read_text())
    assert (cell["status"], cell["mode"], cell["rate"]) == ("done", "open", 160.0)


def test_each_step_runs_long_enough_for_a_p99(tmp_path: Path) -> None:
    stages = FakeStages()
    run(tmp_path, stages)
    durations = dict(stages.loads)
    # p99 needs 368 independent requests; the interval counts independent ones as worth n / 2.16, so a
    # step needs 795 of them: 1.2 x 795 / 10 = 95.4 s, rounded up to 95.5; 1.2 x 795 / 160 = 5.96 -> 6.0
    assert durations["tfserving-grpc-b1-default-r10-rep0"] == 95.5
    assert durations["tfserving-grpc-b1-default-r160-rep0"] == 6.0


def test_steps_are_sized_for_the_planned_correlation(tmp_path: Path) -> None:
    """`inflation: 10` at p90: 36 x 10 = 360 requests; 1.2 x 360 / 10 = 43.2 -> 43.5 s, and
    1.2 x 360 / 160 = 2.7 -> 3.0 s (durations are rounded up to 0.5 s)."""
    matrix = MATRIX.replace("bisect_steps: 2}", "bisect_steps: 2, inflation: 10}") + (
        "slo: {percentile: 90, latency_ms: 100}\n")
    stages = FakeStages()
    run(tmp_path, stages, parse_experiment(matrix))
    durations = dict(stages.loads)
    assert durations["tfserving-grpc-b1-default-r10-rep0"] == 43.5
    assert durations["tfserving-grpc-b1-default-r160-rep0"] == 3.0


def test_a_rerun_reuses_every_recorded_step(tmp_path: Path) -> None:
    run(tmp_path, FakeStages())
    again = FakeStages()
    result = run(tmp_path, again)
    assert again.loads == [] and again.started == []
    assert set(result.already_done) == {p.name for p in (tmp_path / "cells").iterdir()}


def test_a_server_that_dies_fails_its_step_is_restarted_and_the_search_goes_on(tmp_path: Path) -> None:
    stages = FakeStages(kill_server_at="torchserve-grpc-b1-default-r80-rep0")
    result = run(tmp_path, stages)
    assert stages.started == ["tfserving", "torchserve", "torchserve"]
    assert result.failed == ("torchserve-grpc-b1-default-r80-rep0",)
    # the failed step bounds the climb (not a miss): bisection goes on below it on the restarted server
    assert rates_run(stages, "torchserve", "grpc") == [10, 20, 40, 80, 60, 70]
    # a resume reruns the failed step (and finds 80 met, so the search climbs on)
    resumed = FakeStages()
    run(tmp_path, resumed)
    assert rates_run(resumed, "torchserve", "grpc")[:2] == [80, 160]
