"""The smoke matrix on REAL servers (small model, free ports): interrupted after a few cells, resumed,
it ends with every cell's records, a manifest, and a report whose verdict fields are filled."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from smoke_report_gate import load_check_smoke_report

from analysis.summary import read_summary
from inferload.cells import expand_cells
from inferload.experiments import load_experiment
from inferload.rounds import sweep_order
from inferload.runner import ExperimentResult, run_experiment
from inferload.stages import RealStages
from models.artifacts import ArtifactLayout
from serving.ports import Ports, is_free

# the module fixture runs the smoke matrix's 9 cells (3 before the Ctrl-C, then 7 resumed): ~11 s per
# cell, alone: CI re-checks its report with no allowance for a busy machine. Beside make test's 3 workers
# under SCHED_IDLE only, the generator fell behind (lateness p99 10-27 ms) in all 9 cells: the servers
# they start run in sessions of their own, where SCHED_IDLE does not yield to us (tests/idle_lane.py).
# Beside the workers in their idle cgroup: under 1 ms in every cell (below).
pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.alone, pytest.mark.timeout(900)]

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "smoke.yaml"
check_smoke_report = load_check_smoke_report()
# The smoke chain runs once, here: the shipped matrix (same 9 pairs, model, SLO) at 4x the rate for 4.5 s
# instead of 18: the same ~450 requests per cell in a quarter of the wall time. An earlier VM saw the
# generator fall behind at 100/s (lateness p99 13-164 ms) beside work under SCHED_IDLE only; beside the
# idle lanes here (pinned as below) it was 0.05-0.70 ms over 9 cells, 8 judged (one run; at 50/s for 9 s,
# 0.10-0.86 ms over 27 cells in 3 runs, 27 judged): the smoke chain's setup took 90 s instead of 135.
# `.ci/run` sets INFERLOAD_SMOKE_OUT: the run and its report are then written there, and after the
# tests CI checks that report with .ci/check_smoke_report.py's strict rules (no allowance for a busy
# machine).
SMOKE_OUT = os.environ.get("INFERLOAD_SMOKE_OUT")
FAST_LOAD = {"rates": [100]}
FAST_DURATION_S = 4.5
INTERRUPTED_AT = 2  # the third cell the round runs
# Warm-up until stable and the calibration probe are tested on real servers by test_drift_is_measured.py;
# here they would only add their seconds to both starts (interrupted, resumed).
QUICK = {"server_warmup": {"enabled": False}, "calibration": {"enabled": False}}
# The generator on a core of its own, the servers on another (experiments/protocols-pinned.yaml's split).
# On the empty machine (an earlier VM), unpinned: generator lateness p99 1.0-11.2 ms over 27 cells in 3
# runs (one cell above CI's 5 ms limit); pinned: 0.5-3.2 ms over 36 cells in 4 runs. Pinned, the servers
# queue on one core: 2, 2, 3 and 2 of 9 verdicts were withheld for correlated latencies (unpinned 0, 1
# and 1), which .ci/check_smoke_report.py accepts; a generator-invalid cell it does not.
_CPUS = sorted(os.sched_getaffinity(0))
PINNED = {"cpus": {"servers": str(_CPUS[0]), "load": str(_CPUS[1])}} if len(_CPUS) >= 2 else {}


class CtrlCAfterLoad(RealStages):
    """The real stages, with Ctrl-C arriving as one cell's load ends (its records are on disk)."""

    def __init__(self, cell_id: str) -> None:
        super().__init__()
        self.cell_id = cell_id

    def run_load(self, settings: Any, out_dir: Path) -> Any:
        summary = super().run_load(settings, out_dir)
        if settings.run == self.cell_id:
            raise KeyboardInterrupt
        return summary


@dataclass(frozen=True)
class SmokeRun:
    out: Path
    cell_ids: list[str]
    ports: Ports
    before_resume: dict[str, str | None]
    done_cell_json_before: dict[str, str]
    result: ExperimentResult


def cell_status(out: Path, cell_id: str) -> str | None:
    path = out / "cells" / cell_id / "cell.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


@pytest.fixture(scope="module")
def smoke_run(small_artifacts: ArtifactLayout, tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    document = yaml.safe_load(SMOKE.read_text())
    document["load"].update(FAST_LOAD)
    document["duration_s"] = FAST_DURATION_S
    document.update(QUICK)
    document.update(PINNED)
    fast = tmp_path_factory.mktemp("matrix") / "smoke.yaml"
    fast.write_text(yaml.safe_dump(document, sort_keys=False))
    experiment = load_experiment(fast)
    order = sweep_order(expand_cells(experiment).cells, experiment.schedule_seed)
    cell_ids = [cell.cell_id for _, cell in order]
    out = Path(SMOKE_OUT) if SMOKE_OUT else tmp_path_factory.mktemp("results") / "smoke"
    if out.exists() and any(out.iterdir()):
        pytest.fail(f"INFERLOAD_SMOKE_OUT={out} holds an earlier run: remove it (the run would resume it)")
    ports = Ports.free()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, out, progress=False, artifacts_dir=small_artifacts.root, ports=ports,
                       stages=CtrlCAfterLoad(cell_ids[INTERRUPTED_AT]))
    before = {cell_id: cell_status(out, cell_id) for cell_id in cell_ids}
    done_json = {c: (out / "cells" / c / "cell.json").read_text() for c in cell_ids[:INTERRUPTED_AT]}
    assert all(is_free(port) for port in ports.of("tfserving").values()), "Ctrl-C must stop the servers"
    result = run_experiment(experiment, out, progress=False, artifacts_dir=small_artifacts.root, ports=ports)
    return SmokeRun(out, cell_ids, ports, before, done_json, result)


def test_the_interrupted_run_kept_finished_cells_and_left_the_rest_open(smoke_run: SmokeRun) -> None:
    ids = smoke_run.cell_ids
    assert [smoke_run.before_resume[c] for c in ids[:INTERRUPTED_AT]] == ["done"] * INTERRUPTED_AT
    assert all(smoke_run.before_resume[c] is None for c in ids[INTERRUPTED_AT:])


def test_resume_skips_done_cells_and_redoes_the_interrupted_one(smoke_run: SmokeRun) -> None:
    ids = smoke_run.cell_ids
    assert sorted(smoke_run.result.already_done) == sorted(ids[:INTERRUPTED_AT])
    assert smoke_run.result.done == tuple(ids[INTERRUPTED_AT:])
    assert smoke_run.result.failed == ()
    for cell_id, text in smoke_run.done_cell_json_before.items():
        assert (smoke_run.out / "cells" / cell_id / "cell.json").read_text() == text, "done cells untouched"
    attempt = smoke_run.out / "attempts" / f"{ids[INTERRUPTED_AT]}.1"
    assert attempt.is_dir(), "interrupted attempt kept aside"


def test_every_cell_has_records_server_metrics_and_a_done_cell_json(smoke_run: SmokeRun) -> None:
    from loadtest import read_run

    for cell_id in smoke_run.cell_ids:
        cell_dir = smoke_run.out / "cells" / cell_id
        record = json.loads((cell_dir / "cell.json").read_text())
        assert record["status"] == "done", record
        data = read_run(cell_dir)
        assert len(data.records) > 0
        assert (data.records["status"] == "ok").sum() > 0, f"{cell_id}: no request succeeded"
        assert set(data.records["server"]) == {record["server"]}
        assert set(data.records["protocol"]) == {record["protocol"]}
        assert (cell_dir / "server_metrics.jsonl").stat().st_size > 0


def test_the_manifest_names_the_matrix_machine_versions_and_tfserving_kind(smoke_run: SmokeRun) -> None:
    manifest = json.loads((smoke_run.out / "manifest.json").read_text())
    assert manifest["schema"] == "inferload.experiment" and manifest["name"] == "smoke"
    assert manifest["tfserving_kind"] in ("tensorflow_model_server", "tfs-compat")
    assert manifest["model"] == {"classes": 64, "features": 1024, "seed": 0}
    assert manifest["versions"]["torchserve"] and manifest["machine"]["cpu_count_logical"] >= 1
    assert manifest["experiment"]["protocols"] == ["rest-json", "rest-binary", "grpc"]


def test_the_report_fills_a_verdict_for_every_server_and_protocol(smoke_run: SmokeRun) -> None:
    import analysis

    paths = analysis.write_report(smoke_run.out)
    summary = read_summary(paths.json)
    verdicts = summary.verdicts
    assert {(v.server, v.protocol) for v in verdicts} == {
        (server, protocol) for server in ("tfserving", "torchserve", "triton")
        for protocol in ("rest-json", "rest-binary", "grpc")}
    # the CI gate's rules: every pair answered (ok records, errors within the SLO's limit) and its verdict
    # is judged (a max rate with its p99, or a measured miss), not null for want of requests or because
    # cells failed. One allowance on this shared machine: a pair whose generator could not keep the
    # schedule (generator-invalid: the machine was overloaded, not the servers) may stay unjudged.
    assert check_smoke_report.problems_in(summary, allow_generator_invalid=True) == []
    runs = {(r.key.server, r.key.protocol): r for r in summary.runs}
    for verdict in verdicts:
        judged = verdict.max_rate_under_slo is not None or verdict.first_miss_rate is not None
        run = runs[(verdict.server, verdict.protocol)]
        # unjudged only for the machine: its generator fell behind, or its stalls correlated the latencies
        # so much that the SLO percentile was withheld as "too few" effective requests, not printed wrong
        machine = run.generator_valid is False or check_smoke_report._withheld_for_correlation(run)
        assert judged or machine, verdict
    assert Path(paths.html).stat().st_size > 0 and Path(paths.markdown).stat().st_size > 0
