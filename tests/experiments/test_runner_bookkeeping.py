"""The runner's bookkeeping, with the heavy stages replaced by a fake (a unit test of the runner only):
resume skips done cells and redoes the interrupted one, a dying server fails only its cell and is
restarted, Ctrl-C stops the servers and keeps finished cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runner_fakes import FakeStages

from inferload.cells import expand_cells
from inferload.experiments import ExperimentError, ModelSpec, parse_experiment
from inferload.runner import ExperimentResult, RunError, cell_is_done, run_experiment
from serving.ports import Ports

MATRIX = """\
name: bookkeeping
model: {classes: 4, features: 8, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, grpc]
load: {mode: open, rates: [10, 20]}
batch_sizes: [1]
warmup_s: 0
duration_s: 1
"""
EXPERIMENT = parse_experiment(MATRIX)
ALL_CELLS = 8


def run(out: Path, stages: FakeStages, **kwargs: Any) -> ExperimentResult:
    return run_experiment(EXPERIMENT, out, progress=False, artifacts_dir=out / "artifacts",
                          ports=Ports.free(), stages=stages, **kwargs)


def cell_ids() -> list[str]:
    """Every cell id, in the order the cells run (rounds: lowest rate first, lines in a seeded order)."""
    from inferload.rounds import sweep_order

    return [cell.cell_id for _, cell in sweep_order(expand_cells(EXPERIMENT).cells, EXPERIMENT.schedule_seed)]


def status(out: Path, cell_id: str) -> str | None:
    path = out / "cells" / cell_id / "cell.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


def test_a_full_run_writes_every_cell_a_manifest_and_the_floor(tmp_path: Path) -> None:
    stages = FakeStages()
    result = run(tmp_path, stages)
    assert result.done == tuple(cell_ids()) and result.failed == ()
    assert stages.loads == cell_ids()
    assert all(status(tmp_path, cell_id) == "done" for cell_id in cell_ids())
    assert stages.started == [("default", "tfserving"), ("default", "torchserve")]
    assert all(server.stopped == 1 for server in stages.servers)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["schema"] == "inferload.experiment" and manifest["schema_version"] == 2
    assert manifest["tfserving_kind"] == "tfs-compat"
    assert manifest["model"] == {"classes": 4, "features": 8, "seed": 0}
    assert manifest["machine"]["cpu_count_logical"] >= 1 and "numpy" in manifest["versions"]
    assert (tmp_path / "floor.json").exists()
    cell = json.loads((tmp_path / "cells" / cell_ids()[0] / "cell.json").read_text())
    assert cell["server"] == "tfserving" and cell["rate"] == 10.0 and cell["mode"] == "open"
    assert cell["tfserving_kind"] == "tfs-compat" and cell["load_summary"] == {"sent": 10}
    assert (tmp_path / "cells" / cell_ids()[0] / "server_metrics.jsonl").exists()


@pytest.mark.parametrize("k", [0, 3, 5])
def test_an_interrupted_run_resumes_at_the_interrupted_cell(tmp_path: Path, k: int) -> None:
    ids = cell_ids()
    first = FakeStages(interrupt_at=ids[k])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, first)
    assert all(server.stopped >= 1 for server in first.servers), "servers must be down after Ctrl-C"
    assert [status(tmp_path, cell_id) for cell_id in ids[:k]] == ["done"] * k
    assert status(tmp_path, ids[k]) is None  # interrupted: partial records, no cell.json
    done_before = {cell_id: (tmp_path / "cells" / cell_id / "cell.json").read_text() for cell_id in ids[:k]}

    second = FakeStages()
    result = run(tmp_path, second)
    assert second.loads == ids[k:]
    assert sorted(result.already_done) == sorted(ids[:k])
    assert all(status(tmp_path, cell_id) == "done" for cell_id in ids)
    assert done_before == {c: (tmp_path / "cells" / c / "cell.json").read_text() for c in ids[:k]}
    assert (tmp_path / "attempts" / f"{ids[k]}.1" / "requests.jsonl").exists(), "partial attempt kept aside"


def test_a_server_that_dies_fails_its_cell_and_is_restarted(tmp_path: Path) -> None:
    ids = cell_ids()
    victim = next(cell_id for cell_id in ids[1:] if cell_id.startswith("tfserving"))
    stages = FakeStages(kill_server_at=victim)
    result = run(tmp_path, stages)
    assert result.failed == (victim,)
    assert set(result.done) == set(ids) - {victim}
    record = json.loads((tmp_path / "cells" / victim / "cell.json").read_text())
    assert record["status"] == "failed" and "died" in record["error"]
    assert (tmp_path / "cells" / victim / "requests.jsonl").exists(), "partial records are kept"
    assert stages.started.count(("default", "tfserving")) == 2, "restarted for the next cell"

    rerun = FakeStages()
    run(tmp_path, rerun)
    assert rerun.loads == [victim]
    assert status(tmp_path, victim) == "done"


def test_a_load_error_fails_the_cell_without_restarting_a_live_server(tmp_path: Path) -> None:
    ids = cell_ids()
    stages = FakeStages(raise_at=ids[2])
    result = run(tmp_path, stages)
    assert result.failed == (ids[2],)
    record = json.loads((tmp_path / "cells" / ids[2] / "cell.json").read_text())
    assert "connection reset by peer" in record["error"]
    assert stages.started == [("default", "tfserving"), ("default", "torchserve")]


def test_a_server_that_does_not_start_fails_its_cells_and_the_matrix_goes_on(tmp_path: Path) -> None:
    stages = FakeStages(fail_start="tfserving")
    result = run(tmp_path, stages)
    assert len(result.failed) == 4 and all(cell_id.startswith("tfserving") for cell_id in result.failed)
    assert len(result.done) == 4 and all(cell_id.startswith("torchserve") for cell_id in result.done)
    record = json.loads((tmp_path / "cells" / result.failed[0] / "cell.json").read_text())
    assert "did not start" in record["error"] and "healthy" in record["error"]


def test_a_finished_run_reruns_nothing(tmp_path: Path) -> None:
    run(tmp_path, FakeStages())
    again = FakeStages()
    result = run(tmp_path, again)
    assert again.loads == [] and again.started == [] and again.exports == 0
    assert len(result.already_done) == ALL_CELLS


def test_only_runs_the_matching_cells(tmp_path: Path) -> None:
    stages = FakeStages()
    result = run(tmp_path, stages, only="*grpc*")
    assert sorted(stages.loads) == sorted(cell_id for cell_id in cell_ids() if "grpc" in cell_id)
    assert cell_is_done(tmp_path / "cells" / result.done[0])


@pytest.mark.parametrize(("old", "new", "why"), [
    ("duration_s: 1", "duration_s: 2", "`duration_s` differs"),
    ("seed: 0}", "seed: 1}", "`model` differs"),
    ("{mode: open, rates: [10, 20]}", "{mode: closed, concurrencies: [1]}", "`load.mode` differs"),
    ("batch_sizes: [1]", "batch_sizes: [1]\nserver_configs: [{name: default, torchserve: {workers: 2}}]",
     "server config 'default' changed"),
])
def test_resuming_with_a_matrix_that_measures_differently_is_refused(tmp_path: Path, old: str, new: str,
                                                                      why: str) -> None:
    run(tmp_path, FakeStages(), only="tfserving-grpc-*")
    other = parse_experiment(MATRIX.replace(old, new))
    with pytest.raises(ExperimentError, match=f"different matrix.*{why}"):
        run_experiment(other, tmp_path, progress=False, ports=Ports.free(), stages=FakeStages())


def test_an_extended_sweep_resumes_and_runs_only_the_new_cells(tmp_path: Path) -> None:
    run(tmp_path, FakeStages())
    extended = parse_experiment(MATRIX.replace("rates: [10, 20]", "rates: [10, 20, 40]"))
    stages = FakeStages()
    result = run_experiment(extended, tmp_path, progress=False, ports=Ports.free(), stages=stages)
    assert stages.loads and all(cell_id.endswith("-r40-rep0") for cell_id in stages.loads)
    assert len(result.already_done) == ALL_CELLS and len(result.done) == 4
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["experiment"]["load"]["rates"] == [10.0, 20.0, 40.0]


def test_progress_names_the_cell_its_load_and_the_time_left(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    stages = FakeStages(raise_at=cell_ids()[1])
    run_experiment(EXPERIMENT, tmp_path, progress=True, ports=Ports.free(), stages=stages)
    err = capsys.readouterr().err  # not a terminal: one plain line per step
    server, protocol = next((c.server, c.protocol) for c in expand_cells(EXPERIMENT).cells
                            if c.cell_id == cell_ids()[0])
    assert f"cell 1/8: round 0: {server} {protocol} b1 10 req/s (default, rep 0) [~" in err
    assert "left]" in err
    assert f"cell {cell_ids()[1]} failed: ConnectionError: connection reset by peer" in err
    assert "8/8 cells in" in err


def test_a_manifest_without_newer_optional_fields_still_resumes(tmp_path: Path) -> None:
    run(tmp_path, FakeStages(), only="tfserving-grpc-*")
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["experiment"]["lateness_limit_ms"]  # as written before that field existed
    manifest_path.write_text(json.dumps(manifest))
    stages = FakeStages()
    run(tmp_path, stages)
    assert len(stages.loads) == ALL_CELLS - 2


def test_a_failed_export_stops_the_run_before_any_server_starts(tmp_path: Path) -> None:
    class BrokenExport(FakeStages):
        def prepare_artifacts(self, spec: ModelSpec, root: Path) -> None:
            raise OSError("No space left on device")

    stages = BrokenExport()
    with pytest.raises(RunError, match="could not export the model.*No space left"):
        run(tmp_path, stages)
    assert stages.started == []
