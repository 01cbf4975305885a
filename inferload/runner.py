"""Run a whole experiment matrix: export, floor, servers per configuration, one load run per cell.

This is the only place that ties models/, serving/ and loadtest/ together. The stages are reached
through `inferload.stages.Stages`, so the bookkeeping (resume, failures, restarts, Ctrl-C) is tested
on its own and the real stages are exercised end to end on real servers.

Resume rule (docs/architecture.md): a cell whose `cell.json` says `done` is never rerun; any other
cell directory (interrupted: no cell.json; or failed) is moved aside into `attempts/` and redone.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferload.cells import Cell, CellPlan, SkippedCell, expand_cells, select_cells
from inferload.cpus import experiment_plan
from inferload.experiments import Experiment, ExperimentError, ModelSpec, load_experiment
from inferload.manifest import (
    CELL_DONE,
    CELL_FAILED,
    SchemaError,
    build_manifest,
    cell_status,
    now_iso,
    read_manifest,
    write_cell,
    write_manifest,
)
from inferload.progress import MatrixProgress
from inferload.search import (
    Judgement,
    duration_rule,
    expected_steps,
    judge_step,
    longest_step_s,
    search_steps,
)
from inferload.stages import RealStages, RunError, RunningServers, Stages, load_settings_for
from inferload.targets import TargetDriver, driver_for

if TYPE_CHECKING:
    from serving.cpusets import CpuPlan

__all__ = [
    "RunError",
    "ExperimentResult",
    "RealStages",
    "Stages",
    "run_experiment",
    "default_artifacts_dir",
    "cell_is_done",
]

ARTIFACTS_ROOT = Path("artifacts")


@dataclass(frozen=True)
class ExperimentResult:
    """What a run did: cells run now (done / failed), cells already done before, cells skipped."""

    out_dir: Path
    manifest_path: Path
    done: tuple[str, ...]
    failed: tuple[str, ...]
    already_done: tuple[str, ...]
    skipped: tuple[SkippedCell, ...]
    tfserving_kind: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def default_artifacts_dir(spec: ModelSpec, root: Path = ARTIFACTS_ROOT) -> Path:
    """`artifacts/<classes>x<features>-s<seed>`: one export per model size, shared by experiments."""
    return root / f"{spec.classes}x{spec.features}-s{spec.seed}"


def cell_is_done(cell_dir: Path) -> bool:
    return cell_status(cell_dir)[0] == CELL_DONE


# Fields that only add or remove cells (or re-judge them): a results directory may be resumed with
# a matrix that changes them, e.g. a rate sweep extended upwards. Everything else shapes every cell.
_AXES = {"servers", "protocols", "load", "batch_sizes", "server_configs", "repetitions", "max_body_mb", "slo",
         "repeat_shares", "aa"}


def _incompatibilities(previous: Experiment, current: Experiment) -> list[str]:
    """Why cells of `previous` cannot sit beside cells of `current` in one results directory."""
    problems = [f"`{name}` differs" for name in Experiment.model_fields
                if name not in _AXES and getattr(previous, name) != getattr(current, name)]
    if previous.load.mode != current.load.mode:
        problems.append("`load.mode` differs")
    earlier = {config.name: config for config in previous.server_configs}
    problems += [f"server config {config.name!r} changed its settings" for config in current.server_configs
                 if config.name in earlier and earlier[config.name] != config]
    return problems


def _check_manifest_matches(manifest_path: Path, experiment: Experiment) -> None:
    """Resuming is safe when the matrix only adds, drops or re-judges cells; refuse anything else."""
    if not manifest_path.is_file():
        return
    try:
        previous = read_manifest(manifest_path)
        problems = _incompatibilities(Experiment.model_validate(previous.experiment), experiment)
    except SchemaError as exc:  # an older, newer or foreign manifest
        problems = [f"its manifest.json is not one this version can read ({exc})"]
    except ValueError:
        problems = ["its manifest.json is not one this version can read"]
    if problems:
        raise ExperimentError(
            f"{manifest_path.parent} holds results of a different matrix ({'; '.join(problems)}): "
            "resuming would mix cells measured differently; use another --out directory, or delete "
            "this one to start over"
        )


def _move_aside(cell_dir: Path, attempts_dir: Path) -> None:
    """Keep an interrupted or failed attempt for inspection, out of the way of analysis."""
    attempts_dir.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        target = attempts_dir / f"{cell_dir.name}.{n}"
        if not target.exists():
            shutil.move(str(cell_dir), str(target))
            return


def _record(cell: Cell, status: str, error: str | None, *, tfserving_kind: str | None,
            started_at: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **cell.describe(),
        "status": status,
        "error": error,
        "tfserving_kind": tfserving_kind,
        "started_at": started_at,
        "finished_at": now_iso(),
        **(extra or {}),
    }


_SUMMARY_KEYS = ("valid", "invalid_reasons", "achieved_send_rate", "ok_rate", "counts", "interrupted")


def _summary_dict(summary: Any) -> dict[str, Any] | None:
    """A few generator-health fields of the load summary for cell.json (load.json has all of them)."""
    full = _full_summary_dict(summary)
    if full is None:
        return None
    picked = {key: full[key] for key in _SUMMARY_KEYS if key in full}
    return picked or full


def _full_summary_dict(summary: Any) -> dict[str, Any] | None:
    if summary is None:
        return None
    if isinstance(summary, dict):
        return summary
    for method in ("to_dict", "model_dump"):
        if hasattr(summary, method):
            try:
                value = getattr(summary, method)()
                return value if isinstance(value, dict) else None
            except Exception:  # noqa: BLE001 - a summary we cannot echo is not worth failing a cell
                return None
    import dataclasses

    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        return dataclasses.asdict(summary)
    return None


def run_experiment(
    experiment: str | Path | Experiment,
    out_dir: str | Path,
    *,
    progress: bool = True,
    artifacts_dir: str | Path | None = None,
    ports: Any = None,
    only: str | None = None,
    stages: Stages | None = None,
    measure_floor: bool = True,
    target: TargetDriver | None = None,
    judge: Callable[[Path], Judgement] | None = None,
) -> ExperimentResult:
    """Run every cell of the matrix that is not done yet into `out_dir`; resumable and Ctrl-C safe.

    `ports` defaults to the standard ports (`serving.Ports()`); tests pass `Ports.free()`.
    A server that dies during a cell fails that cell (its partial records are kept), is restarted,
    and the matrix goes on. KeyboardInterrupt stops the servers and propagates; finished cells stay.
    `target` defaults to the driver of the matrix's `target:` section (inferload/targets.py); an
    external target is checked before any load and is never restarted.
    A matrix with `load.search` runs each line's max-rate search (inferload/search.py) on the line's
    running server; `judge` (tests) replaces analysis' judgement of a finished step.
    """
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    driver = target if target is not None else driver_for(experiment)
    out = Path(out_dir)
    stages = stages if stages is not None else RealStages(log_dir=out / "logs")
    full_plan = expand_cells(experiment)
    plan: CellPlan = select_cells(full_plan, only)
    if ports is None:
        from serving.ports import Ports

        ports = Ports()
    artifacts = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(experiment.model)

    manifest_path = out / "manifest.json"
    _check_manifest_matches(manifest_path, experiment)
    out.mkdir(parents=True, exist_ok=True)
    cells_dir = out / "cells"
    attempts_dir = out / "attempts"

    pending = [cell for cell in plan.cells if not cell_is_done(cells_dir / cell.cell_id)]
    search = experiment.load.search
    reused: list[str] = []  # search steps finished by an earlier run, judged again, not rerun
    if search is not None:  # one cell per line at the start rate: the search picks its steps as it goes
        pending = list(plan.cells)
    cpus = _cpu_plan(experiment)
    checked = pending if search is None else [*pending, *(c.at_rate(search.max) for c in pending)]
    _check_settings(checked, experiment, stages, ports, cpus, driver)
    if pending:
        driver.check(experiment)  # e.g. an unreachable external target: a clear error before any load
    already = tuple(cell.cell_id for cell in plan.cells if cell not in pending)
    requested_kind = experiment.tfserving_kind
    manifest = build_manifest(experiment, tfserving_kind=requested_kind or "auto",
                              skipped=[s.describe() for s in full_plan.skipped], artifacts=artifacts)
    manifest["cpus"] = cpus.describe()
    manifest["target"] = driver.describe()
    labelled_kind = getattr(experiment.target, "servers", {}).get("tfserving")
    if labelled_kind is not None:  # external: what the user says runs there, never started here
        manifest["tfserving_kind"] = labelled_kind.kind
    if manifest_path.is_file():  # read and matched above
        previous = read_manifest(manifest_path)
        manifest["created_at"] = previous.created_at
        manifest["tfserving_kind"] = previous.tfserving_kind
        manifest["resumed_at"] = now_iso()
    write_manifest(manifest_path, manifest)

    done: list[str] = []
    failed: list[str] = []
    per_cell = experiment.warmup_s + experiment.longest_duration_s + 4.0  # early_stop: the cap (a bound)
    total, unit = len(pending), "cells"
    if search is not None:
        total, unit = len(pending) * expected_steps(search), "steps"
        per_cell = experiment.warmup_s + longest_step_s(experiment)(search.start) + 4.0
    with MatrixProgress(total, per_cell, progress, unit=unit) as bar:
        if already:
            bar.note(f"resuming: {len(already)} cell(s) already done, {len(pending)} to run")
        for skip in plan.skipped:
            bar.note(f"skipping {skip.cell_id}: {skip.reason}")
        if not pending:
            return ExperimentResult(out, manifest_path, (), (), already, plan.skipped,
                                    manifest["tfserving_kind"])
        if driver.needs_artifacts:
            bar.show("exporting the model (if needed)")
            try:
                stages.prepare_artifacts(experiment.model, artifacts)
            except RunError:
                raise
            except Exception as exc:
                raise RunError(f"could not export the model into {artifacts}: {exc}") from exc
        floor_path = out / "floor.json"
        # The floor is this machine's compute; an external target's servers run elsewhere.
        if measure_floor and driver.needs_artifacts and not floor_path.exists():
            bar.show("measuring the in-process floor")
            try:
                stages.measure_floor(artifacts, experiment.batch_sizes, floor_path)
            except Exception as exc:  # noqa: BLE001 - the matrix is worth more than the floor
                bar.note(f"warning: in-process floor not measured: {exc}")

        bar.start_cells()
        for (config_name, server), group in itertools.groupby(pending, key=lambda c: c.group):
            cells: Iterable[Cell] = list(group)
            if search is not None:
                cells = search_steps(
                    cells, search, cells_dir=cells_dir, duration_for=duration_rule(experiment),
                    judge=judge or (lambda step_dir: judge_step(step_dir, experiment.slo)),
                    note=bar.note, reused=reused)
            _run_group(cells, out / "servers" / f"{config_name}-{server}", experiment, stages=stages,
                       ports=ports, artifacts=artifacts, out=out, attempts_dir=attempts_dir, bar=bar,
                       done=done, failed=failed, manifest=manifest, manifest_path=manifest_path,
                       cpus=cpus, driver=driver)

    if search is not None:
        already = tuple(reused)
    return ExperimentResult(out, manifest_path, tuple(done), tuple(failed), already, plan.skipped,
                            manifest["tfserving_kind"])


def _cpu_plan(experiment: Experiment) -> CpuPlan:
    """The matrix's CPU sets checked on this machine (or the default split), before anything starts."""
    from serving.cpusets import CpuSetError

    given = experiment.cpus
    try:
        return experiment_plan(given.servers if given else None, given.load if given else None,
                               pinned_servers=experiment.target.kind == "local")
    except CpuSetError as exc:
        raise ExperimentError(f"{exc} (the matrix's `cpus:` section)") from None


def _check_settings(cells: list[Cell], experiment: Experiment, stages: Stages, ports: Any,
                    cpus: CpuPlan, driver: TargetDriver) -> None:
    """Build every cell's server and load settings now, so a bad value fails before any server starts."""
    problems: dict[str, str] = {}
    for cell in cells:
        try:
            stages.check_server_settings(cell.server_config, experiment.tfserving_kind)
            endpoint = driver.endpoint(cell.server, cell.protocol, ports)
            stages.make_load_settings(**load_settings_for(cell, experiment, ports, server_kind=None,
                                                          cpus=cpus.load, endpoint=endpoint))
        except Exception as exc:  # noqa: BLE001 - pydantic, ValueError: all reported the same way
            problems.setdefault(str(exc), cell.cell_id)
    fronted = [cell for cell in cells if cell.server_config.balancer.kind == "nginx"]
    if fronted:  # the balancer and cache are a real nginx: missing, say which package before any start
        from serving.balancer import BalancerError, nginx_binary

        try:
            nginx_binary()
        except BalancerError as exc:
            problems.setdefault(str(exc), fronted[0].cell_id)
    if problems:
        raise ExperimentError("cells whose settings the servers or the load generator reject:\n" + "\n".join(
            f"  {cell_id} (and maybe others): {message}" for message, cell_id in problems.items()))


def _run_group(group: Iterable[Cell], state_dir: Path, experiment: Experiment, *, stages: Stages, ports: Any,
               artifacts: Path,
               out: Path, attempts_dir: Path, bar: MatrixProgress, done: list[str], failed: list[str],
               manifest: dict[str, Any], manifest_path: Path, cpus: CpuPlan, driver: TargetDriver) -> None:
    """The cells of one (server config, server) group, on one server that is restarted if it dies.

    `group` may be a generator (a max-rate search) that picks each cell after the previous one ran.
    An external target's servers are never restarted: a dead one fails its cells until it is back.
    """
    servers: RunningServers | None = None
    try:
        for cell in group:
            index = bar.finished + 1
            cell_dir = out / "cells" / cell.cell_id
            if cell_dir.exists():
                _move_aside(cell_dir, attempts_dir)
            started_at = now_iso()
            target = {"kind": driver.kind, **driver.endpoint(cell.server, cell.protocol, ports).describe()}
            if servers is None or not servers.alive(cell.server):
                if servers is not None:
                    with contextlib.suppress(Exception):
                        servers.down()
                    servers = None
                verb = "checking" if driver.kind == "external" else "starting"
                bar.show(f"{bar.counter(index)}: {verb} {cell.server} ({cell.server_config_name})")
                try:
                    servers = driver.bring_up(
                        cell.server, cell.server_config, stages=stages, experiment=experiment,
                        ports=ports, artifacts=artifacts, state_dir=state_dir, cpus=cpus.servers)
                except Exception as exc:  # noqa: BLE001 - recorded in the cell, the matrix goes on
                    _fail(cell, cell_dir, driver.start_failure(cell.server, exc), None, started_at,
                          bar, failed, target)
                    continue
                kind = stages.server_kind(servers, cell.server)
                if kind and manifest.get("tfserving_kind") in (None, "auto"):
                    manifest["tfserving_kind"] = kind
                    write_manifest(manifest_path, manifest)
            kind = stages.server_kind(servers, cell.server)
            problem = driver.before_cell(servers, cell, experiment)  # external: the served model
            if problem is not None:
                _fail(cell, cell_dir, problem, kind, started_at, bar, failed, target)
                continue
            bar.show(f"{bar.counter(index)}: {cell.server} {cell.protocol} b{cell.batch} "
                     f"{cell.level} ({cell.server_config_name}, rep {cell.repetition})")
            error, summary = _run_cell(cell, experiment, stages=stages, servers=servers, ports=ports,
                              cell_dir=cell_dir, kind=kind, cpus=cpus.load, driver=driver)
            if error is None:
                write_cell(cell_dir, _record(
                    cell, CELL_DONE, None, tfserving_kind=kind, started_at=started_at,
                    extra={"load_summary": _summary_dict(summary), "target": target}))
                done.append(cell.cell_id)
                bar.advance()
            else:
                _fail(cell, cell_dir, error, kind, started_at, bar, failed, target)
                if not servers.alive(cell.server):
                    with contextlib.suppress(Exception):
                        servers.down()
                    servers = None  # restarted before the next cell
    finally:
        if servers is not None:
            servers.down()


def _fail(cell: Cell, cell_dir: Path, error: str, kind: str | None, started_at: str, bar: MatrixProgress,
          failed: list[str], target: dict[str, Any] | None = None) -> None:
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_cell(cell_dir, _record(cell, CELL_FAILED, error, tfserving_kind=kind,
                                               started_at=started_at, extra={"target": target}))
    failed.append(cell.cell_id)
    bar.note(f"cell {cell.cell_id} failed: {error}")
    bar.advance()


def _run_cell(cell: Cell, experiment: Experiment, *, stages: Stages, servers: RunningServers, ports: Any,
              cell_dir: Path, kind: str | None,
              cpus: tuple[int, ...] | None = None,
              driver: TargetDriver | None = None) -> tuple[str | None, Any]:
    """One load run with the server monitored; returns (why the cell failed or None, load summary)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    endpoint = driver.endpoint(cell.server, cell.protocol, ports) if driver is not None else None
    settings = stages.make_load_settings(**load_settings_for(cell, experiment, ports, server_kind=kind,
                                                             cpus=cpus, endpoint=endpoint))
    # Replicas behind nginx: the cell keeps nginx.conf and its slice of the access log.
    cell_files = getattr(servers, "cell_files", None)
    kept = cell_files(cell_dir) if cell_files is not None else contextlib.nullcontext()
    try:
        with kept, stages.monitor(servers, cell_dir / "server_metrics.jsonl"):
            summary = stages.run_load(settings, cell_dir)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the cell, the matrix goes on
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if not servers.alive(cell.server):
            return f"{_what_died(servers, cell.server)} died during the cell ({detail})", None
        return detail, None
    if not servers.alive(cell.server):
        dead = _what_died(servers, cell.server)
        return f"{dead} died during the cell; its partial records are kept", summary
    return None, summary


def _what_died(servers: RunningServers, server: str) -> str:
    """`torchserve`, or which replicas (`torchserve-2`) or `nginx` of a replicated server stopped."""
    dead = getattr(servers, "dead", None)
    parts = dead() if dead is not None else []
    return ", ".join(parts) if parts else server
