"""Each cell becomes the load generator's and the servers' settings: ports, load level, seeds, batching."""

from __future__ import annotations

import pytest

from inferload.cells import expand_cells
from inferload.experiments import parse_experiment
from inferload.stages import load_settings_for, server_settings_for
from loadtest import LoadSettings
from serving.ports import Ports
from serving.settings import ServerSettings

MATRIX = """\
name: t
model: {classes: 64, features: 1024, seed: 7}
servers: [tfserving, torchserve]
protocols: [rest-json, rest-binary, grpc]
load: {mode: open, rates: [10]}
batch_sizes: [4]
server_configs:
  - name: batched
    torchserve: {workers: 2, batch_size: 8, max_batch_delay_ms: 3}
    tfserving: {batching: true, max_batch_size: 16, batch_timeout_us: 500, num_batch_threads: 1}
warmup_s: 1
duration_s: 3
repetitions: 2
seed: 100
max_in_flight: 32
processes: 2
"""
PORTS = Ports(1001, 1002, 1003, 1004, 1005, 1006, 1007)


def settings_of(cell_id: str, text: str = MATRIX) -> LoadSettings:
    experiment = parse_experiment(text)
    cell = next(c for c in expand_cells(experiment).cells if c.cell_id == cell_id)
    return LoadSettings(**load_settings_for(cell, experiment, PORTS, server_kind=None))


@pytest.mark.parametrize(("cell_id", "port"), [
    ("tfserving-rest-json-b4-batched-r10-rep0", PORTS.tfserving_rest),
    ("tfserving-rest-binary-b4-batched-r10-rep0", PORTS.tfserving_rest),
    ("tfserving-grpc-b4-batched-r10-rep0", PORTS.tfserving_grpc),
    ("torchserve-rest-json-b4-batched-r10-rep0", PORTS.torchserve_inference),
    ("torchserve-rest-binary-b4-batched-r10-rep0", PORTS.torchserve_inference),
    ("torchserve-grpc-b4-batched-r10-rep0", PORTS.torchserve_grpc),
])
def test_each_server_and_protocol_goes_to_its_port(cell_id: str, port: int) -> None:
    assert settings_of(cell_id).resolved_port == port


def test_the_cell_carries_its_load_level_batch_and_limits() -> None:
    settings = settings_of("torchserve-grpc-b4-batched-r10-rep1")
    assert (settings.mode, settings.rate, settings.concurrency) == ("open", 10.0, None)
    assert (settings.batch, settings.features, settings.warmup_s, settings.duration_s) == (4, 1024, 1.0, 3.0)
    assert (settings.max_in_flight, settings.processes) == (32, 2)
    assert settings.run == "torchserve-grpc-b4-batched-r10-rep1"


def test_repetitions_get_their_own_schedule_and_servers_share_one() -> None:
    """Common random numbers: at one rate and repetition every server x protocol sees the same arrivals."""
    rep0 = settings_of("tfserving-grpc-b4-batched-r10-rep0")
    rep1 = settings_of("tfserving-grpc-b4-batched-r10-rep1")
    other_server = settings_of("torchserve-rest-json-b4-batched-r10-rep0")
    assert rep0.seed != rep1.seed and rep0.payload_seed != rep1.payload_seed
    assert (rep0.seed, rep0.payload_seed) == (other_server.seed, other_server.payload_seed)


def test_closed_loop_cells_set_concurrency() -> None:
    text = MATRIX.replace("{mode: open, rates: [10]}", "{mode: closed, concurrencies: [3]}")
    settings = settings_of("tfserving-grpc-b4-batched-c3-rep0", text)
    assert (settings.mode, settings.rate, settings.concurrency) == ("closed", None, 3)


GENERATOR_DEFAULT = LoadSettings.model_fields["lateness_p99_limit_ms"].default


@pytest.mark.parametrize(("extra", "limit"), [("", GENERATOR_DEFAULT), ("lateness_limit_ms: 20\n", 20.0)])
def test_the_lateness_limit_is_the_generators_unless_the_matrix_sets_one(extra: str, limit: float) -> None:
    assert settings_of("tfserving-grpc-b4-batched-r10-rep0", MATRIX + extra).lateness_p99_limit_ms == limit


def test_a_server_config_maps_to_server_settings() -> None:
    experiment = parse_experiment(MATRIX)
    settings = ServerSettings(**server_settings_for(experiment.server_configs[0], None))
    assert settings.torchserve_workers == 2
    assert (settings.torchserve_batch_size, settings.torchserve_max_batch_delay_ms) == (8, 3)
    assert (settings.tfserving_batching, settings.tfserving_max_batch_size) == (True, 16)
    assert (settings.tfserving_batch_timeout_us, settings.tfserving_num_batch_threads) == (500, 1)
    assert settings.tfserving_kind == "auto"
