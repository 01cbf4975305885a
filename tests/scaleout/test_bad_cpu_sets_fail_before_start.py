"""A CPU set that does not exist here, or that overlaps between servers and load, stops everything
before any export, server start or request, with a message naming the set and what to choose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from inferload.experiments import ExperimentError, parse_experiment
from inferload.runner import run_experiment
from models.artifacts import ArtifactLayout
from serving.ports import Ports
from serving.settings import ServerSettings
from serving.stack import ServerInfo, Stack

MATRIX = """\
name: pinned
model: {classes: 64, features: 1024, seed: 0}
servers: [torchserve]
protocols: [grpc]
load: {mode: open, rates: [10]}
batch_sizes: [1]
warmup_s: 0
duration_s: 1
cpus:
  servers: "{servers}"
  load: "{load}"
"""
ABSENT_CPU = max(os.sched_getaffinity(0)) + 1


def inferload(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferload", *argv], capture_output=True, text=True,
                          timeout=120, check=False)


def matrix(servers: str, load: str) -> str:
    return MATRIX.replace("{servers}", servers).replace("{load}", load)


class NothingMayRun:
    """Any stage call means the run started despite the bad CPU set."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"stage {name} was called before the CPU sets were checked")


def test_overlapping_sets_in_a_matrix_fail_on_load_naming_the_line() -> None:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(matrix("0-1", "1"), source="pinned.yaml")
    assert "pinned.yaml:11: cpus.load:" in str(caught.value)
    assert "overlaps cpus.servers on CPU(s) 1" in str(caught.value)


def test_a_malformed_set_in_a_matrix_names_its_field() -> None:
    with pytest.raises(ExperimentError, match=r"pinned.yaml:10: cpus.servers:.*write e.g. 0-2,5"):
        parse_experiment(matrix("zero", "1"), source="pinned.yaml")


def test_a_cpu_the_machine_lacks_stops_the_matrix_before_any_stage(tmp_path: Path) -> None:
    experiment = parse_experiment(matrix("0", str(ABSENT_CPU)))
    with pytest.raises(ExperimentError) as caught:
        run_experiment(experiment, tmp_path / "out", progress=False, stages=NothingMayRun())  # type: ignore[arg-type]
    assert f"cpus.load '{ABSENT_CPU}'" in str(caught.value)
    assert "does not offer" in str(caught.value)
    assert not (tmp_path / "out" / "cells").exists()


@pytest.mark.servers  # `inferload serve up`, which refuses before it starts anything
def test_serve_up_refuses_an_absent_cpu_before_starting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = inferload("serve", "up", "--artifacts", str(tmp_path), "--cpus", f"0,{ABSENT_CPU}",
                     "--state-dir", str(state), "--free-ports")
    assert done.returncode == 2
    err = done.stderr
    assert f"CPU(s) {ABSENT_CPU}" in err and "--cpus (servers)" in err
    assert not (state / "servers.json").exists()


def load_argv(tmp_path: Path, cpus: str, state_dir: Path) -> list[str]:
    return ["load", "--server", "torchserve", "--protocol", "grpc", "--rate", "10", "--duration", "1",
            "--features", "8", "--port", str(Ports.free().torchserve_grpc), "--cpus", cpus,
            "--state-dir", str(state_dir), "--out", str(tmp_path / "run"), "--quiet"]


def test_load_refuses_an_absent_cpu_before_sending(tmp_path: Path) -> None:
    done = inferload(*load_argv(tmp_path, str(ABSENT_CPU), tmp_path / "no-servers"))
    assert done.returncode == 2
    assert f"CPU(s) {ABSENT_CPU}" in done.stderr
    assert not (tmp_path / "run").exists()


def test_load_refuses_cpus_of_the_running_servers(tmp_path: Path) -> None:
    """servers.json of a stack pinned to CPU 0, whose process is alive (this test's own pid)."""
    me = psutil.Process()
    state_dir = tmp_path / "servers"
    state_dir.mkdir()
    info = ServerInfo(name="torchserve", kind="torchserve", pid=me.pid, create_time=me.create_time(),
                      ports={}, endpoints={}, log_file="", workdir=str(tmp_path))
    stack = Stack(artifacts=ArtifactLayout(tmp_path), settings=ServerSettings(cpus=(0,)), ports=Ports.free(),
                  state_dir=state_dir, servers={"torchserve": info})
    stack._save()
    done = inferload(*load_argv(tmp_path, "0", state_dir))
    assert done.returncode == 2
    err = done.stderr
    assert "overlap the CPUs 0 of the servers running from" in err and "disjoint" in err
    assert not (tmp_path / "run").exists()


def test_pinning_servers_that_inferload_does_not_start_is_refused(tmp_path: Path) -> None:
    external = (Path(__file__).resolve().parents[2] / "experiments" / "external-example.yaml").read_text()
    experiment = parse_experiment(external + 'cpus: {servers: "0", load: "1"}\n')
    with pytest.raises(ExperimentError, match="cpus.servers pins servers that inferload does not start"):
        run_experiment(experiment, tmp_path / "out", progress=False, stages=NothingMayRun())  # type: ignore[arg-type]
