"""Cells run in rounds (inferload/rounds.py; heavy stages faked, a unit test of the runner): every round
visits every line once in a seeded random order, lowest rate first; each repetition runs on servers
started afresh (or warmed again); every line is warmed after its server starts; the machine is
calibrated before the first round and after each; an A/A line runs as two arms in every round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runner_fakes import FakeStages

from inferload.cells import expand_cells
from inferload.experiments import parse_experiment
from inferload.rounds import round_order
from inferload.runner import run_experiment
from serving.ports import Ports

MATRIX = """\
name: rounds
model: {classes: 4, features: 8, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, rest-binary, grpc]
load: {mode: open, rates: [10, 20]}
batch_sizes: [1]
warmup_s: 0
duration_s: 1
repetitions: 2
seed: 3
"""
LINES = 6


def run(out: Path, stages: FakeStages, extra: str = "") -> dict[str, Any]:
    run_experiment(parse_experiment(MATRIX + extra), out, progress=False, artifacts_dir=out / "artifacts",
                   ports=Ports.free(), stages=stages, measure_floor=False)
    return json.loads((out / "manifest.json").read_text())


def cell_json(out: Path, cell_id: str) -> dict[str, Any]:
    return json.loads((out / "cells" / cell_id / "cell.json").read_text())


def test_a_round_order_is_a_seeded_permutation() -> None:
    lines = [f"line{k}" for k in range(6)]
    orders = [round_order(lines, seed=3, round_index=k) for k in range(20)]
    assert all(sorted(order) == lines for order in orders)
    assert orders == [round_order(lines, seed=3, round_index=k) for k in range(20)], "the same seed, the same"
    assert len({tuple(order) for order in orders}) > 10, "rounds draw different orders"
    assert [round_order(lines, seed=4, round_index=k) for k in range(20)] != orders


def test_every_round_visits_every_line_once_in_its_recorded_order(tmp_path: Path) -> None:
    stages = FakeStages()
    manifest = run(tmp_path, stages)
    assert manifest["schedule"] == {"seed": 3, "isolation": "restart", "arms": 1}
    rounds = manifest["rounds"]
    assert [(r["round"], r["repetition"], r["level"]) for r in rounds] == [
        (0, 0, 10.0), (1, 0, 20.0), (2, 1, 10.0), (3, 1, 20.0)]
    cells = {cell.cell_id: cell for cell in expand_cells(parse_experiment(MATRIX)).cells}
    expected_loads = []
    for entry in rounds:
        assert sorted(entry["order"]) == sorted({cell.line_id for cell in cells.values()})
        for position, line in enumerate(entry["order"]):
            (cell_id,) = [c.cell_id for c in cells.values() if c.line_id == line
                          and c.rate == entry["level"] and c.repetition == entry["repetition"]]
            record = cell_json(tmp_path, cell_id)
            assert (record["round"], record["position"]) == (entry["round"], position)
            expected_loads.append(cell_id)
    assert stages.loads == expected_loads, "cells ran exactly in the recorded orders"
    assert len({tuple(r["order"]) for r in rounds}) > 1, "the order changes from round to round"


def test_each_repetition_runs_on_servers_started_afresh_and_warmed(tmp_path: Path) -> None:
    stages = FakeStages()
    manifest = run(tmp_path, stages)
    assert stages.started == [("default", "tfserving"), ("default", "torchserve")] * 2
    assert all(server.stopped == 1 for server in stages.servers)
    warmups = manifest["warmups"]
    # each server on its gRPC line, once per repetition
    assert [(w["line"], w["repetition"]) for w in warmups] == [
        (f"{server}-grpc-b1-default", repetition)
        for repetition in (0, 1) for server in ("tfserving", "torchserve")]
    assert all(w["stable"] and "within ±10%" in w["rule"] and len(w["windows_ms"]) >= 3 for w in warmups)


def test_rewarm_keeps_the_servers_and_warms_them_again(tmp_path: Path) -> None:
    stages = FakeStages()
    manifest = run(tmp_path, stages, "rounds: {isolation: rewarm}\n")
    assert manifest["schedule"]["isolation"] == "rewarm"
    assert stages.started == [("default", "tfserving"), ("default", "torchserve")]
    assert len(manifest["warmups"]) == 2 * 2


def test_warm_up_per_line_warms_every_line(tmp_path: Path) -> None:
    manifest = run(tmp_path, FakeStages(), "server_warmup: {per: line}\n")
    assert len(manifest["warmups"]) == 2 * LINES


def test_a_warm_up_that_never_settles_stops_at_its_cap_and_says_so(tmp_path: Path) -> None:
    stages = FakeStages(unstable=True)
    manifest = run(tmp_path, stages, "server_warmup: {max_s: 3}\n")
    warmup = manifest["warmups"][0]
    assert warmup["stable"] is False
    assert sorted(set(warmup["windows_ms"])) == [1.0, 2.0]
    assert warmup["seconds"] < 3, "the cap counts load seconds; the fake's chunks take none"


def test_the_machine_is_calibrated_before_the_first_round_and_after_each(tmp_path: Path) -> None:
    stages = FakeStages()
    manifest = run(tmp_path, stages)
    (calibration,) = stages.calibrations
    assert calibration.labels == ["before round 0", *(f"after round {k}" for k in range(4))]
    assert [(r["calibration_before"], r["calibration_after"]) for r in manifest["rounds"]] == [
        (0, 1), (None, 2), (None, 3), (None, 4)]
    for entry in manifest["rounds"]:
        for line in entry["order"]:
            cell_id = next(c.cell_id for c in expand_cells(parse_experiment(MATRIX)).cells
                           if c.line_id == line and c.rate == entry["level"]
                           and c.repetition == entry["repetition"])
            machine = cell_json(tmp_path, cell_id)["machine"]
            # the nearest point: the one before the round (round 0's own, else the previous round's
            # "after") or the one after it
            assert machine["calibration"]["index"] in (entry["round"], entry["round"] + 1)
            assert machine["probe"]["n"] >= 1 and machine["cpu_count"] >= 1
            assert machine["window_ns"][0] < machine["window_ns"][1]


def test_switched_off_calibration_and_warm_up_leave_no_records(tmp_path: Path) -> None:
    stages = FakeStages()
    manifest = run(tmp_path, stages, "calibration: {enabled: false}\nserver_warmup: {enabled: false}\n")
    assert stages.calibrations == [] and stages.warmup_chunks == [] and manifest["warmups"] == []
    cell_id = expand_cells(parse_experiment(MATRIX)).cells[0].cell_id
    machine = cell_json(tmp_path, cell_id)["machine"]
    assert machine["calibration"] is None and machine["probe"] is None
    assert machine["cpu_count"] >= 1 and machine["other_cpu_cores"] is not None  # the watch still ran


@pytest.mark.parametrize(("pattern", "twins"), [("*grpc*", 2), ("*", LINES), ("tfserving-rest-json", 1)])
def test_an_aa_line_runs_as_two_arms_in_every_round(tmp_path: Path, pattern: str, twins: int) -> None:
    stages = FakeStages()
    manifest = run(tmp_path, stages, f"aa: {{lines: '{pattern}'}}\n")
    assert manifest["schedule"]["arms"] == 2
    for entry in manifest["rounds"]:
        armb = [line for line in entry["order"] if line.endswith("-armb")]
        assert len(armb) == twins and len(entry["order"]) == LINES + twins
        assert all(line.removesuffix("-armb") in entry["order"] for line in armb)
    twin = next(cell_id for cell_id in stages.loads if cell_id.endswith("-armb"))
    record = cell_json(tmp_path, twin)
    original = cell_json(tmp_path, twin.removesuffix("-armb"))
    assert (record["arm"], original["arm"]) == ("b", "a")
    assert {k: v for k, v in record.items() if k not in ("cell_id", "arm", "round", "position", "started_at",
                                                          "finished_at", "machine")} == \
        {k: v for k, v in original.items() if k not in ("cell_id", "arm", "round", "position", "started_at",
                                                         "finished_at", "machine")}


def test_a_resumed_run_keeps_the_rounds_and_their_orders(tmp_path: Path) -> None:
    first = FakeStages()
    full = run(tmp_path / "full", first)
    order = first.loads
    stopped = FakeStages(interrupt_at=order[8])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", stopped)
    again = FakeStages()
    resumed = run(tmp_path / "resumed", again)
    assert stopped.loads == order[:9] and again.loads == order[8:]
    assert [r["order"] for r in resumed["rounds"]] == [r["order"] for r in full["rounds"]]
    for cell_id in order:
        a, b = cell_json(tmp_path / "full", cell_id), cell_json(tmp_path / "resumed", cell_id)
        assert (a["round"], a["position"]) == (b["round"], b["position"])
