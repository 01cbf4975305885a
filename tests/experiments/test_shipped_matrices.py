"""Every matrix in experiments/ loads, expands, and fits the time budget it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cells import expand_cells
from inferload.experiments import load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

# (file, cells to run, cells skipped, budget in minutes)
SHIPPED = [
    ("smoke.yaml", 6, 0, 3),
    ("protocols.yaml", 42, 0, 25),
    ("protocols-pinned.yaml", 42, 0, 25),
    ("batch-sweep.yaml", 49, 17, 15),
    ("batching.yaml", 24, 0, 15),
    ("external-example.yaml", 18, 0, 10),
]


def test_every_shipped_matrix_is_listed_here() -> None:
    assert sorted(path.name for path in EXPERIMENTS.glob("*.yaml")) == sorted(name for name, *_ in SHIPPED)


@pytest.mark.parametrize(("name", "cells", "skipped", "budget_min"), SHIPPED, ids=[s[0] for s in SHIPPED])
def test_shipped_matrix_loads_and_expands(name: str, cells: int, skipped: int, budget_min: float) -> None:
    experiment = load_experiment(EXPERIMENTS / name)
    plan = expand_cells(experiment)
    assert experiment.name == name.removesuffix(".yaml")
    assert (len(plan.cells), len(plan.skipped)) == (cells, skipped)
    assert plan.estimated_seconds(experiment) <= budget_min * 60


def test_smoke_covers_all_six_server_protocol_pairs_on_the_small_model() -> None:
    experiment = load_experiment(EXPERIMENTS / "smoke.yaml")
    pairs = {(cell.server, cell.protocol) for cell in expand_cells(experiment).cells}
    assert len(pairs) == 6
    assert experiment.model.features == 1024


def test_batch_sweep_lists_the_absurd_bodies_it_skips() -> None:
    plan = expand_cells(load_experiment(EXPERIMENTS / "batch-sweep.yaml"))
    skipped = {skip.cell_id for skip in plan.skipped}
    assert "torchserve-rest-json-b1024-default-c1-rep0" in skipped
    assert "torchserve-grpc-b1-default-c1-rep0" not in skipped


@pytest.mark.parametrize("name", [s[0] for s in SHIPPED])
def test_every_cell_maps_to_valid_server_and_load_settings(name: str) -> None:
    from inferload.stages import load_settings_for, server_settings_for
    from loadtest import LoadSettings
    from serving.ports import Ports
    from serving.settings import ServerSettings

    experiment = load_experiment(EXPERIMENTS / name)
    ports = Ports.free()
    for cell in expand_cells(experiment).cells:
        ServerSettings(**server_settings_for(cell.server_config, experiment.tfserving_kind))
        settings = LoadSettings(**load_settings_for(cell, experiment, ports, server_kind=None))
        assert settings.run == cell.cell_id and settings.batch == cell.batch
        assert settings.resolved_port in ports.of(cell.server).values()
