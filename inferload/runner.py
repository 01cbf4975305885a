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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferload.calibration import Calibration, NoCalibration
from inferload.cells import Cell, CellPlan, SkippedCell, expand_cells, select_cells
from inferload.cpus import experiment_plan
from inferload.experiments import Experiment, ExperimentError, ModelSpec, RateSearch, load_experiment
from inferload.machine import MachineWatch, MachineWindow, wait_until_idle
from inferload.manifest import build_manifest, now_iso
from inferload.progress import MatrixProgress
from inferload.results_disk import results_disk_failure, stop_on_disk_failure
from inferload.rounds import Block, SearchRounds, blocks, level_rounds, round_order
from inferload.search import (
    Judgement,
    duration_rule,
    expected_steps,
    judge_step,
    longest_step_s,
)
from inferload.stages import RealStages, RunError, RunningServers, Stages, load_settings_for
from inferload.targets import TargetDriver, driver_for
from inferload.warmup import rule_words, warm_up
from inferload_formats import (
    CELL_DONE,
    CELL_FAILED,
    SchemaError,
    cell_status,
    read_cell,
    read_manifest,
    write_cell,
    write_manifest,
)

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


@stop_on_disk_failure(RunError)
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

    Cells run in rounds (inferload/rounds.py): per repetition and server config, the servers start,
    every line is warmed until stable (inferload/warmup.py), and each round visits every line once in
    a seeded random order, with a calibration of the machine before the first round and after each
    (inferload/calibration.py); each cell records its round, position and the machine while it ran.
    `ports` defaults to the standard ports (`serving.Ports()`); tests pass `Ports.free()`.
    A server that dies during a cell fails that cell (its partial records are kept), is restarted and
    warmed, and the matrix goes on. KeyboardInterrupt stops the servers and propagates; finished cells
    stay. `target` defaults to the driver of the matrix's `target:` section (inferload/targets.py); an
    external target is checked before any load and is never restarted.
    A matrix with `load.search` runs every line's max-rate search (inferload/search.py), one step per
    line per round; `judge` (tests) replaces analysis' judgement of a finished step.
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

    pending = [cell for cell in plan.cells if not cell_is_done(cells_dir / cell.cell_id)]
    search = experiment.load.search
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
    manifest["schedule"] = {"seed": experiment.schedule_seed, "isolation": experiment.rounds.isolation,
                            "arms": 2 if any(cell.arm for cell in full_plan.cells) else 1}
    labelled_kind = getattr(experiment.target, "servers", {}).get("tfserving")
    if labelled_kind is not None:  # external: what the user says runs there, never started here
        manifest["tfserving_kind"] = labelled_kind.kind
    if manifest_path.is_file():  # read and matched above
        previous = read_manifest(manifest_path)
        manifest["created_at"] = previous.created_at
        manifest["tfserving_kind"] = previous.tfserving_kind
        manifest["resumed_at"] = now_iso()
        manifest["rounds"] = [entry.model_dump(mode="json") for entry in previous.rounds]
        manifest["warmups"] = [entry.model_dump(mode="json") for entry in previous.warmups]
    write_manifest(manifest_path, manifest)

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
        session = _Session(experiment, out, stages=stages, driver=driver, ports=ports, artifacts=artifacts,
                           cpus=cpus, bar=bar, manifest=manifest, manifest_path=manifest_path)
        try:
            session.open_calibration()
            session.run(blocks(plan.cells if search is None else pending), judge)
        finally:
            session.close()

    if search is not None:
        already = tuple(session.reused)
    return ExperimentResult(out, manifest_path, tuple(session.done), tuple(session.failed), already,
                            plan.skipped, manifest["tfserving_kind"])


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


class _Session:
    """One run of the matrix's rounds: the running servers, the calibration probe, the bookkeeping."""

    def __init__(self, experiment: Experiment, out: Path, *, stages: Stages, driver: TargetDriver, ports: Any,
                 artifacts: Path, cpus: CpuPlan, bar: MatrixProgress, manifest: dict[str, Any],
                 manifest_path: Path) -> None:
        self.experiment = experiment
        self.out = out
        self.stages = stages
        self.driver = driver
        self.ports = ports
        self.artifacts = artifacts
        self.cpus = cpus
        self.bar = bar
        self.manifest = manifest
        self.manifest_path = manifest_path
        self.seed = experiment.schedule_seed
        self.done: list[str] = []
        self.failed: list[str] = []
        self.reused: list[str] = []
        self.round = 0
        self.servers: dict[str, RunningServers] = {}
        self.config_name: str | None = None
        self.block: Block | None = None
        self.warmed: set[str] = set()  # servers whose lines are warm for the current block
        self.calibration: Calibration = NoCalibration()
        self.calibrated_once = False
        self._round_cells: list[Cell] = []  # cells run in the current round (their calibration is refreshed)

    # ---------------------------------------------------------------- calibration

    def open_calibration(self) -> None:
        """Start the probe on the servers' CPUs (local and compose targets: the servers run here)."""
        if not self.experiment.calibration.enabled or not self.driver.needs_artifacts:
            return
        self.bar.show("starting the calibration probe")
        from models.calibration import CALIBRATION_FILE

        try:
            self.calibration = self.stages.calibration(
                self.artifacts, self.experiment.batch_sizes, self.out / CALIBRATION_FILE, self.cpus.servers,
                self.experiment.calibration, self.bar.note)
        except Exception as exc:  # noqa: BLE001 - the matrix is worth more than the calibration
            self.bar.note(f"warning: the calibration probe did not start ({exc}); "
                          "cells record no calibration")

    def _calibration_log(self) -> Any:
        from models.calibration import CalibrationError, read_calibration

        if self.calibration.path is None or not self.calibration.path.is_file():
            return None
        try:
            return read_calibration(self.calibration.path)
        except CalibrationError as exc:
            self.bar.note(f"warning: {exc}")
            return None

    def _machine(self, cell: Cell, window: MachineWindow | None, log: Any) -> dict[str, Any] | None:
        """cell.json's `machine`: the watch's window plus the nearest calibration and the probe in it."""
        if window is None:
            return None
        # Other work is only known as such when inferload started the servers: a compose or external
        # target's servers may run on this machine too, and their CPU is not told apart from other work
        # (counted, it would flag every cell as run beside other work: analysis/drift.py).
        other = window.other_cpu_cores if self.driver.kind == "local" else None
        record: dict[str, Any] = {
            "window_ns": list(window.window_ns), "cpu_count": window.cpu_count,
            "steal_share": window.steal_share, "load_average_1m": window.load_average_1m,
            "other_cpu_cores": other,
        }
        if log is None:
            return record
        start, end = window.window_ns
        middle = (start + end) // 2
        point = log.nearest(middle)
        timing = point.predict_at(cell.batch) if point is not None else None
        if point is not None and timing is not None:
            record["calibration"] = {
                "index": point.index, "label": point.label,
                "seconds_away": round((point.t_ns - middle) / 1e9, 3), "batch": timing.batch,
                "predict_ms": timing.median_ms, "bandwidth_gb_s": point.bandwidth_gb_s}
        probe = log.probe_window(start, end)
        if probe is not None:
            record["probe"] = {"batch": probe.batch, "median_ms": probe.median_ms, "p90_ms": probe.p90_ms,
                               "n": probe.n}
        return record

    def _calibrate_before_first(self) -> int | None:
        if self.calibrated_once:
            return None
        self.calibrated_once = True
        self.bar.show(f"calibrating the machine before round {self.round}")
        return self.calibration.calibrate(f"before round {self.round}")

    def _finish_round(self, block: Block, kind: str, level: float | None, order: list[str],
                      before: int | None) -> None:
        """After a round that ran cells: calibrate, refresh the round's cells' nearest calibration, and
        record the round in the manifest."""
        after = self.calibration.calibrate(f"after round {self.round}")
        log = self._calibration_log()
        for cell in self._round_cells:
            self._refresh_machine(cell, log)
        self._round_cells = []
        entry = {"round": self.round, "repetition": block.repetition, "server_config_name": block.config_name,
                 "kind": kind, "level": level, "order": order, "calibration_before": before,
                 "calibration_after": after}
        rounds = [r for r in self.manifest.get("rounds", []) if r["round"] != self.round]
        self.manifest["rounds"] = sorted([*rounds, entry], key=lambda r: r["round"])
        write_manifest(self.manifest_path, self.manifest)

    def _refresh_machine(self, cell: Cell, log: Any) -> None:
        cell_dir = self.out / "cells" / cell.cell_id
        try:
            record = read_cell(cell_dir)
        except SchemaError:
            return
        if record is None or record.machine is None:
            return
        window = MachineWindow(tuple(record.machine.window_ns), record.machine.cpu_count,  # type: ignore[arg-type]
                               record.machine.steal_share, record.machine.load_average_1m,
                               record.machine.other_cpu_cores)
        write_cell(cell_dir, {**record.to_dict(), "machine": self._machine(cell, window, log)})

    # ---------------------------------------------------------------- servers

    def _enter_block(self, block: Block) -> None:
        """Servers of another config, or every repetition with `isolation: restart`, start afresh."""
        restart = self.experiment.rounds.isolation == "restart" or self.config_name != block.config_name
        if self.servers and restart:
            self._down()
        self.config_name = block.config_name
        self.block = block
        self.warmed = set()

    def _down(self) -> None:
        for servers in self.servers.values():
            with contextlib.suppress(Exception):
                servers.down()
        self.servers = {}

    def _state_dir(self, server: str) -> Path:
        return self.out / "servers" / f"{self.config_name}-{server}"

    def _start(self, server: str, cell: Cell) -> RunningServers | str:
        """Start `server` under the cell's config; the running servers, or why they did not start."""
        return self._start_all({server: cell})[server]

    def _start_all(self, starts: dict[str, Cell]) -> dict[str, RunningServers | str]:
        """Start several servers at once (each under its cell's config): the running servers of each, or
        why it did not start. Starting in parallel saves the slowest start's worth of waiting."""
        for server in starts:
            old = self.servers.pop(server, None)
            if old is not None:
                with contextlib.suppress(Exception):
                    old.down()
        verb = "checking" if self.driver.kind == "external" else "starting"
        first = next(iter(starts.values()))
        self.bar.show(f"{verb} {', '.join(starts)} ({first.server_config_name}, "
                      f"repetition {first.repetition})")

        def bring_up(server: str) -> RunningServers | str:
            cell = starts[server]
            try:
                return self.driver.bring_up(
                    server, cell.server_config, stages=self.stages, experiment=self.experiment,
                    ports=self.ports, artifacts=self.artifacts, state_dir=self._state_dir(server),
                    cpus=self.cpus.servers)
            except Exception as exc:  # noqa: BLE001 - recorded in the cells, the matrix goes on
                return self.driver.start_failure(server, exc)

        if len(starts) == 1:
            results = {server: bring_up(server) for server in starts}
        else:
            with ThreadPoolExecutor(max_workers=len(starts)) as pool:
                futures = {server: pool.submit(bring_up, server) for server in starts}
                results = {server: future.result() for server, future in futures.items()}
        for server, started in results.items():
            if isinstance(started, str):
                continue
            self.servers[server] = started
            self.warmed.discard(server)
            kind = self.stages.server_kind(started, server)
            if kind and server == "tfserving" and self.manifest.get("tfserving_kind") in (None, "auto"):
                self.manifest["tfserving_kind"] = kind
                write_manifest(self.manifest_path, self.manifest)
        return results

    def _ready(self, block: Block) -> None:
        """Every server of the block up, and every server started since warmed."""
        lines = block.lines()
        down = {}
        for server in block.servers:
            running = self.servers.get(server)
            if running is None or not running.alive(server):
                down[server] = next(cell for cell in lines.values() if cell.server == server)
        if down:
            self._start_all(down)
        for server in block.servers:
            if server in self.servers and server not in self.warmed:
                self._warm(server, block)

    def _server_pids(self) -> list[int]:
        pids = []
        for servers in self.servers.values():
            with contextlib.suppress(Exception):
                pids += [m.pid for m in servers.monitored() if m.pid is not None]
        return pids

    # ---------------------------------------------------------------- warm-up

    def _warm(self, server: str, block: Block) -> None:
        """Warm a server just started (or kept from the repetition before) until it is stable: on one of
        its lines (`server_warmup.per: server`: its gRPC line if it has one, the lightest for the load
        generator, else its first) or on each of them (`per: line`)."""
        self.warmed.add(server)
        rule = self.experiment.server_warmup
        if not rule.enabled:
            return
        lines = [cell for cell in block.lines().values() if cell.server == server and cell.arm != "b"]
        if rule.per == "server":
            lines = [next((cell for cell in lines if cell.protocol == "grpc"), lines[0])]
        for cell in lines:
            self.bar.show(f"warming {cell.server} {cell.protocol} b{cell.batch} until stable")
            started_at = now_iso()
            outcome = warm_up(self._warmup_chunks(cell), rule)
            self.manifest.setdefault("warmups", []).append({
                "line": cell.line_id, "server": cell.server, "protocol": cell.protocol, "batch": cell.batch,
                "server_config_name": cell.server_config_name, "repetition": cell.repetition,
                "started_at": started_at, "rule": rule_words(rule),
                "windows_ms": [round(m, 4) for m in outcome.windows_ms],
                "window_requests": list(outcome.window_requests), "seconds": round(outcome.seconds, 3),
                "stable": outcome.stable, "error": outcome.error})
            how = "stable" if outcome.stable else "not stable at the cap"
            if outcome.error:
                how = f"failed ({outcome.error})"
            self.bar.note(f"warm-up {cell.line_id}: {how} after {outcome.seconds:.1f} s "
                          f"({len(outcome.windows_ms)} windows)")
        write_manifest(self.manifest_path, self.manifest)

    def _warmup_chunks(self, cell: Cell) -> Callable[[float], Any]:
        """Run one chunk of closed-loop warm-up load on the cell's line, under warmups/ (not cells/)."""
        kind = self.stages.server_kind(self.servers[cell.server], cell.server)
        fields = load_settings_for(cell, self.experiment, self.ports, server_kind=kind, cpus=self.cpus.load,
                                   endpoint=self.driver.endpoint(cell.server, cell.protocol, self.ports))
        fields.pop("early_stop", None)
        chunks = itertools.count()

        def run_chunk(seconds: float) -> Any:
            name = f"{cell.line_id}-rep{cell.repetition}-r{self.round}-{next(chunks)}"
            chunk_dir = self.out / "warmups" / name
            if chunk_dir.exists():
                shutil.rmtree(chunk_dir)
            settings = self.stages.make_load_settings(**{
                **fields, "mode": "closed", "rate": None, "concurrency": 1, "duration_s": seconds,
                "warmup_s": 0.0, "run": f"warmup-{cell.line_id}"})
            return self.stages.warmup_chunk(settings, chunk_dir)

        return run_chunk

    # ---------------------------------------------------------------- rounds

    def run(self, all_blocks: list[Block], judge: Callable[[Path], Judgement] | None) -> None:
        search = self.experiment.load.search
        for block in all_blocks:
            self._enter_block(block)
            if search is None:
                self._run_levels(block)
            else:
                self._run_search(block, search, judge)

    def _run_levels(self, block: Block) -> None:
        for level_round in level_rounds(block, self.seed, self.round):
            todo = [cell for cell in level_round.cells if not cell_is_done(self.out / "cells" / cell.cell_id)]
            if todo:
                self._ready(block)
                before = self._calibrate_before_first()
                for position, cell in enumerate(level_round.cells):
                    if cell in todo:
                        self._run_cell(cell, position)
                self._finish_round(block, "levels", level_round.level,
                                   [cell.line_id for cell in level_round.cells], before)
            self.round += 1

    def _run_search(self, block: Block, search: RateSearch,
                    judge: Callable[[Path], Judgement] | None) -> None:
        experiment = self.experiment
        rounds = SearchRounds(
            starts=list(block.lines().values()), search=search, cells_dir=self.out / "cells",
            duration_for=duration_rule(experiment),
            judge=judge or (lambda step_dir: judge_step(step_dir, experiment.slo)), note=self.bar.note)
        while active := rounds.active():
            order = round_order(active, self.seed, self.round)
            before: int | None = None
            ran = False
            for position, line in enumerate(order):
                step, phase = rounds.next_step(line)
                if rounds.step_is_done(step):
                    self.reused.append(step.cell_id)
                    rounds.record(step, phase, reused=True)
                    continue
                if not ran:
                    self._ready(block)
                    before = self._calibrate_before_first()
                    ran = True
                self._run_cell(step, position)
                rounds.record(step, phase, reused=False)
            if ran:
                self._finish_round(block, "search", None, order, before)
            self.round += 1

    # ---------------------------------------------------------------- one cell

    def _run_cell(self, cell: Cell, position: int) -> None:
        index = self.bar.finished + 1
        cell_dir = self.out / "cells" / cell.cell_id
        if cell_dir.exists():
            _move_aside(cell_dir, self.out / "attempts")
        started_at = now_iso()
        place = {"round": self.round, "position": position}
        endpoint = self.driver.endpoint(cell.server, cell.protocol, self.ports)
        target = {"kind": self.driver.kind, **endpoint.describe()}
        servers = self.servers.get(cell.server)
        if servers is None or not servers.alive(cell.server):
            started = self._start(cell.server, cell)
            if isinstance(started, str):
                self._fail(cell, cell_dir, started, None, started_at, {**place, "target": target})
                return
            servers = started
            if self.block is not None:  # warm the restarted server before measuring again
                self._warm(cell.server, self.block)
        kind = self.stages.server_kind(servers, cell.server)  # the records say it (Triton's too)
        tfs_kind = kind if cell.server == "tfserving" else None  # cell.json's field is TF Serving's
        problem = self.driver.before_cell(servers, cell, self.experiment)  # external: the served model
        if problem is not None:
            self._fail(cell, cell_dir, problem, tfs_kind, started_at, {**place, "target": target})
            return
        self.bar.show(f"{self.bar.counter(index)}: round {self.round}: {cell.server} {cell.protocol} "
                      f"b{cell.batch} {cell.level}{' arm ' + cell.arm if cell.arm else ''} "
                      f"({cell.server_config_name}, rep {cell.repetition})")
        watch = MachineWatch(self._server_pids)
        error, summary = _run_cell(cell, self.experiment, stages=self.stages, servers=servers,
                                   ports=self.ports, cell_dir=cell_dir, kind=kind, cpus=self.cpus.load,
                                   driver=self.driver, around=(watch, self.calibration.probing()))
        machine = self._machine(cell, watch.window, self._calibration_log())
        self._round_cells.append(cell)
        with contextlib.suppress(Exception):  # the next cell of the round starts on an idle server
            wait_until_idle([m.pid for m in servers.monitored() if m.pid is not None])
        if error is None:
            write_cell(cell_dir, _record(
                cell, CELL_DONE, None, tfserving_kind=tfs_kind, started_at=started_at,
                extra={"load_summary": _summary_dict(summary), "target": target, **place,
                       "machine": machine}))
            self.done.append(cell.cell_id)
            self.bar.advance()
        else:
            self._fail(cell, cell_dir, error, tfs_kind, started_at,
                       {**place, "target": target, "machine": machine})
            if not servers.alive(cell.server):
                with contextlib.suppress(Exception):
                    servers.down()
                self.servers.pop(cell.server, None)  # restarted before its next cell

    def _fail(self, cell: Cell, cell_dir: Path, error: str, kind: str | None, started_at: str,
              extra: dict[str, Any]) -> None:
        cell_dir.mkdir(parents=True, exist_ok=True)
        write_cell(cell_dir, _record(cell, CELL_FAILED, error, tfserving_kind=kind, started_at=started_at,
                                     extra=extra))
        self.failed.append(cell.cell_id)
        self.bar.note(f"cell {cell.cell_id} failed: {error}")
        self.bar.advance()

    def close(self) -> None:
        try:
            self._down()
        finally:
            self.calibration.close()


def _run_cell(cell: Cell, experiment: Experiment, *, stages: Stages, servers: RunningServers, ports: Any,
              cell_dir: Path, kind: str | None,
              cpus: tuple[int, ...] | None = None,
              driver: TargetDriver | None = None,
              around: Sequence[contextlib.AbstractContextManager[Any]] = ()) -> tuple[str | None, Any]:
    """One load run with the server monitored (and `around` entered around it, e.g. the machine watch);
    returns (why the cell failed or None, load summary)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    endpoint = driver.endpoint(cell.server, cell.protocol, ports) if driver is not None else None
    settings = stages.make_load_settings(**load_settings_for(cell, experiment, ports, server_kind=kind,
                                                             cpus=cpus, endpoint=endpoint))
    # Replicas behind nginx: the cell keeps nginx.conf and its slice of the access log.
    cell_files = getattr(servers, "cell_files", None)
    kept = cell_files(cell_dir) if cell_files is not None else contextlib.nullcontext()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(kept)
            stack.enter_context(stages.monitor(servers, cell_dir / "server_metrics.jsonl"))
            for context in around:
                stack.enter_context(context)
            summary = stages.run_load(settings, cell_dir)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the cell, the matrix goes on
        if results_disk_failure(exc) is not None:
            raise  # a full results disk stops the matrix (inferload/results_disk.py), not just the cell
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
