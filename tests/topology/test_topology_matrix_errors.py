"""Topology, cache and repeat-share fields of a matrix: read into typed settings, or refused with the
field and line, before anything starts."""

from __future__ import annotations

import pytest

from inferload.cells import expand_cells
from inferload.experiments import ExperimentError, parse_experiment
from inferload.stages import load_settings_for, topology_for
from serving.ports import Ports

VALID = """\
name: t
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, rest-binary, grpc]
load: {mode: open, rates: [10]}
batch_sizes: [1]
server_configs:
  - name: single
  - name: two
    replicas: 2
    balancer: {kind: nginx, policy: least_conn}
  - name: cached
    balancer: {kind: nginx}
    cache: {kind: nginx, body_buffer_mb: 1}
repeat_shares: [0, 0.5]
warmup_s: 1
duration_s: 3
"""


def edit(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new)


def test_a_valid_topology_matrix_becomes_typed_settings() -> None:
    experiment = parse_experiment(VALID)
    two = experiment.server_configs[1]
    assert (two.replicas, two.balancer.kind, two.balancer.policy) == (2, "nginx", "least_conn")
    topology = topology_for(experiment.server_configs[2])
    assert topology.cache is not None and topology.cache.body_buffer_bytes == 1_000_000
    assert topology_for(experiment.server_configs[0]).plain
    plan = expand_cells(experiment)
    assert len(plan.cells) == 3 * 2 * 3 * 2  # configs x servers x protocols x repeat shares
    cell = next(c for c in plan.cells if c.repeat_share == 0.5)
    assert cell.cell_id.endswith("-r10-rs0.5-rep0")
    assert cell.describe()["repeat_share"] == 0.5
    fields = load_settings_for(cell, experiment, Ports(), server_kind=None)
    assert fields["repeat_share"] == 0.5


def test_without_repeat_shares_cell_ids_are_unchanged() -> None:
    experiment = parse_experiment(edit("repeat_shares: [0, 0.5]\n", ""))
    ids = [cell.cell_id for cell in expand_cells(experiment).cells]
    assert "tfserving-grpc-b1-two-r10-rep0" in ids
    assert all(cell.repeat_share is None for cell in expand_cells(experiment).cells)


# (what is wrong, matrix text, expected "line: field" prefix, words the message must contain)
CASES = [
    ("replicas without a balancer",
     edit("    replicas: 2\n    balancer: {kind: nginx, policy: least_conn}\n", "    replicas: 2\n"),
     "9: server_configs.1.balancer:", "need a balancer"),
    ("unknown policy", edit("policy: least_conn", "policy: random"), "11: server_configs.1.balancer.policy:",
     "round_robin"),
    ("unknown balancer", edit("{kind: nginx, policy", "{kind: haproxy, policy"),
     "11: server_configs.1.balancer.kind:", "nginx"),
    ("replicas above the CPUs of any machine", edit("replicas: 2", "replicas: 4096"),
     "10: server_configs.1.replicas:", "less than or equal to 16"),
    ("zero replicas", edit("replicas: 2", "replicas: 0"), "10: server_configs.1.replicas:", "greater than"),
    ("cache without nginx", edit("    balancer: {kind: nginx}\n    cache:", "    cache:"),
     "13: server_configs.2.cache.kind:", "balancer"),
    ("repeat share above 1", edit("[0, 0.5]", "[0, 1.5]"), "15: repeat_shares.1:", "[0, 1]"),
    ("negative repeat share", edit("[0, 0.5]", "[-0.1]"), "15: repeat_shares.0:", "[0, 1]"),
    ("repeat share twice", edit("[0, 0.5]", "[0.5, 0.5]"), "15: repeat_shares.1:", "twice"),
    ("body larger than the cache's buffer", edit("features: 1024", "features: 262144"),
     "14: server_configs.2.cache.body_buffer_mb:", "rest-json batch 1 bodies are ~"),
    ("balancer against an external target", VALID + (
        "target: {kind: external, servers: {tfserving: {rest: 'http://127.0.0.1:1', grpc: '127.0.0.1:2'}, "
        "torchserve: {rest: 'http://127.0.0.1:3', grpc: '127.0.0.1:4', management: 'http://127.0.0.1:5'}}}\n"),
     "11: server_configs.1.balancer:", "target: {kind: local}"),
]


@pytest.mark.parametrize(("what", "text", "where", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_topology_is_refused_naming_field_and_line(what: str, text: str, where: str, words: str) -> None:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(text, source="m.yaml")
    message = str(caught.value)
    assert f"m.yaml:{where}" in message, message
    assert words in message, message


def test_more_replicas_than_cpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.cpusets

    monkeypatch.setattr(serving.cpusets, "available_cpus", lambda: (0, 1))
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(edit("replicas: 2", "replicas: 3"), source="m.yaml")
    assert "m.yaml:10: server_configs.1.replicas: 3 replicas on a machine with 2 CPU(s)" in str(caught.value)


def test_a_buffer_that_holds_the_largest_body_is_accepted() -> None:
    text = edit("features: 1024", "features: 262144").replace("body_buffer_mb: 1", "body_buffer_mb: 4")
    experiment = parse_experiment(text)
    assert experiment.server_configs[2].cache.body_buffer_mb == 4
