"""A matrix expands into stable, readable cells, ordered so each server starts once per configuration."""

from __future__ import annotations

import itertools

import pytest

from inferload.cells import estimate_body_bytes, expand_cells, format_level, select_cells
from inferload.experiments import parse_experiment

MATRIX = """\
name: t
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, rest-binary, grpc]
load: {mode: open, rates: [10, 2.5]}
batch_sizes: [1, 4]
server_configs:
  - name: default
  - name: batched
warmup_s: 1
duration_s: 3
repetitions: 2
"""


def test_cell_count_is_the_product_of_the_matrix() -> None:
    plan = expand_cells(parse_experiment(MATRIX))
    # 2 configs x 2 servers x 2 repetitions x 3 protocols x 2 batches x 2 rates
    assert len(plan.cells) == 96
    assert len({cell.cell_id for cell in plan.cells}) == 96
    assert plan.skipped == ()


def test_cell_ids_are_readable_and_stable() -> None:
    first = expand_cells(parse_experiment(MATRIX)).cells
    again = expand_cells(parse_experiment(MATRIX)).cells
    assert [c.cell_id for c in first] == [c.cell_id for c in again]
    assert first[0].cell_id == "tfserving-rest-json-b1-default-r10-rep0"
    assert "torchserve-grpc-b4-batched-r2.5-rep1" in {c.cell_id for c in first}


def test_cells_are_grouped_by_config_then_server() -> None:
    cells = expand_cells(parse_experiment(MATRIX)).cells
    groups = [key for key, _ in itertools.groupby(cells, key=lambda c: c.group)]
    assert groups == [("default", "tfserving"), ("default", "torchserve"),
                      ("batched", "tfserving"), ("batched", "torchserve")]


def test_closed_loop_cells_carry_concurrency_not_rate() -> None:
    text = MATRIX.replace("{mode: open, rates: [10, 2.5]}", "{mode: closed, concurrencies: [1, 4]}")
    cells = expand_cells(parse_experiment(text)).cells
    assert cells[0].cell_id == "tfserving-rest-json-b1-default-c1-rep0"
    assert all(cell.rate is None and cell.concurrency in (1, 4) for cell in cells)


@pytest.mark.parametrize(("server", "protocol", "batch", "features", "low_mb", "high_mb"), [
    # the full-size instance: ~2.9 MB of JSON (orjson's shortest float32 text), 1 MiB raw, and 4/3 of
    # that as base64 for TF Serving's REST API
    ("tfserving", "rest-json", 1, 262_144, 2.8, 2.95),
    ("torchserve", "rest-json", 1, 262_144, 2.8, 2.95),
    ("tfserving", "rest-binary", 1, 262_144, 1.39, 1.41),
    ("torchserve", "rest-binary", 1, 262_144, 1.04, 1.06),
    ("tfserving", "grpc", 1024, 262_144, 1073, 1074),
    ("torchserve", "rest-json", 1024, 262_144, 2900, 3000),
    ("torchserve", "grpc", 4, 1024, 0.0164, 0.0165),
])
def test_body_size_estimates(server: str, protocol: str, batch: int, features: int,
                             low_mb: float, high_mb: float) -> None:
    assert low_mb <= estimate_body_bytes(server, protocol, batch, features) / 1e6 <= high_mb


def test_cells_over_max_body_are_skipped_with_a_reason() -> None:
    text = MATRIX.replace("features: 1024", "features: 262144") + "max_body_mb: 2\n"
    plan = expand_cells(parse_experiment(text))
    skipped = {skip.cell_id: skip.reason for skip in plan.skipped}
    assert "tfserving-rest-json-b1-default-r10-rep0" in skipped  # 2.9 MB of JSON
    assert "exceeds max_body_mb 2" in skipped["tfserving-rest-json-b1-default-r10-rep0"]
    assert "torchserve-grpc-b1-default-r10-rep0" not in skipped  # 1 MiB raw
    assert "torchserve-grpc-b4-default-r10-rep0" in skipped  # 4 MiB raw
    assert len(plan.cells) + len(plan.skipped) == 96


FULL_SIZE_BATCH_1024 = (MATRIX.replace("features: 1024", "features: 262144")
                        .replace("batch_sizes: [1, 4]", "batch_sizes: [1024]"))


def test_cells_over_the_servers_own_request_limit_are_skipped_naming_the_limit() -> None:
    plan = expand_cells(parse_experiment(FULL_SIZE_BATCH_1024))
    skipped = {skip.cell_id: skip.reason for skip in plan.skipped}
    ran = {cell.cell_id for cell in plan.cells}
    # 1 GiB raw: over TorchServe's 513 MiB request limit, under TF Serving gRPC's 2 GiB
    assert "over torchserve's grpc limit of 537.9 MB" in skipped["torchserve-grpc-b1024-default-r10-rep0"]
    assert "serving/limits.py" in skipped["torchserve-grpc-b1024-default-r10-rep0"]
    assert "tfserving-grpc-b1024-default-r10-rep0" in ran
    assert "tfserving-rest-binary-b1024-default-r10-rep0" in skipped  # 1.4 GB of base64 > 1 GiB


def test_an_external_targets_limits_are_its_own() -> None:
    external = FULL_SIZE_BATCH_1024 + (
        "target:\n  kind: external\n  servers:\n"
        "    tfserving: {rest: 'http://127.0.0.1:8501', grpc: '127.0.0.1:8500'}\n"
        "    torchserve: {rest: 'http://127.0.0.1:8080', grpc: '127.0.0.1:7070',"
        " management: 'http://127.0.0.1:8081'}\n")
    plan = expand_cells(parse_experiment(external))
    assert plan.skipped == ()


@pytest.mark.parametrize(("pattern", "count"), [
    (None, 96), ("*grpc*", 32), ("grpc", 32), ("torchserve-*-b4-batched-*", 12), ("rep1", 48), ("nothing", 0),
])
def test_only_selects_cells_by_id(pattern: str | None, count: int) -> None:
    assert len(select_cells(expand_cells(parse_experiment(MATRIX)), pattern).cells) == count


@pytest.mark.parametrize(("value", "text"), [(100.0, "100"), (2.5, "2.5"), (0.25, "0.25"), (5, "5")])
def test_levels_print_short(value: float, text: str) -> None:
    assert format_level(value) == text
