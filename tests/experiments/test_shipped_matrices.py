"""Every matrix in experiments/ loads, expands, and fits the time budget it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cells import expand_cells
from inferload.experiments import load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

# (file, cells to run, cells skipped, budget in minutes)
SHIPPED = [
    ("smoke.yaml", 9, 0, 5),
    ("demo.yaml", 10, 0, 6),  # 9 max-rate search lines and an A/A twin (steps decided as they run)
    ("protocols.yaml", 135, 0, 65),
    ("protocols-pinned.yaml", 45, 0, 22),
    ("batch-sweep.yaml", 270, 27, 65),
    ("batching.yaml", 108, 0, 46),
    ("external-example.yaml", 27, 0, 15),
    ("scaling.yaml", 36, 0, 82),  # max-rate search lines
    ("caching.yaml", 18, 0, 41),  # max-rate search lines
    ("model-cache.yaml", 18, 0, 41),  # max-rate search lines, Triton's response cache
    ("tls-cost.yaml", 48, 0, 30),
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


def test_smoke_covers_all_nine_server_protocol_pairs_on_the_small_model() -> None:
    experiment = load_experiment(EXPERIMENTS / "smoke.yaml")
    pairs = {(cell.server, cell.protocol) for cell in expand_cells(experiment).cells}
    assert len(pairs) == 9
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


@pytest.mark.parametrize("name", ["scaling.yaml", "caching.yaml", "model-cache.yaml"])
def test_the_header_states_the_dry_run_estimate(name: str) -> None:
    """The wall time in the header is what `inferload run --dry-run` estimates (to the half minute)."""
    import re

    experiment = load_experiment(EXPERIMENTS / name)
    text = (EXPERIMENTS / name).read_text()
    stated = re.search(r"~([0-9.]+) min \(`inferload run experiments/" + name, text)
    assert stated is not None, "the header must give the expected wall time"
    estimate_min = expand_cells(experiment).estimated_seconds(experiment) / 60
    assert float(stated.group(1)) == pytest.approx(estimate_min, abs=0.5)


def test_scaling_measures_one_and_two_replicas_under_both_policies_and_without_a_balancer() -> None:
    experiment = load_experiment(EXPERIMENTS / "scaling.yaml")
    topologies = {(c.replicas, c.balancer.kind, c.balancer.policy if c.balancer.kind == "nginx" else None)
                  for c in experiment.server_configs}
    assert {(1, "none", None), (1, "nginx", "round_robin"), (2, "nginx", "round_robin"),
            (2, "nginx", "least_conn")} <= topologies
    assert experiment.model.features == 262144


def test_model_cache_sweeps_the_repeat_share_with_and_without_triton_s_response_cache() -> None:
    experiment = load_experiment(EXPERIMENTS / "model-cache.yaml")
    assert experiment.servers == ("triton",) and experiment.repeat_shares == (0.0, 0.5, 0.9)
    caches = {c.name: c.triton.response_cache for c in experiment.server_configs}
    assert caches["no_cache"] is None and caches["response_cache"] is not None
    assert set(experiment.protocols) == {"rest-json", "rest-binary", "grpc"}  # inside the server: gRPC too


def test_caching_sweeps_the_repeat_share_behind_a_cache_on_rest() -> None:
    experiment = load_experiment(EXPERIMENTS / "caching.yaml")
    assert experiment.repeat_shares == (0.0, 0.5, 0.9)
    assert all(c.cache.kind == "nginx" for c in experiment.server_configs)
    assert "grpc" not in experiment.protocols and experiment.model.features == 262144
