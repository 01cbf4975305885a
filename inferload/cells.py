"""Matrix expansion: an `Experiment` becomes an ordered list of cells, each one load run.

Cells are ordered server config first, then server, so a matrix restarts each server once per
configuration; cell ids are stable and readable (`torchserve-grpc-b1-default-r100-rep0`) because
they name result directories and are what `--only` and resume match against.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
from dataclasses import asdict, dataclass, replace
from typing import Any

from inferload.experiments import Experiment, ServerConfig
from serving.limits import REQUEST_LIMITS

__all__ = [
    "Cell",
    "SkippedCell",
    "CellPlan",
    "expand_cells",
    "estimate_body_bytes",
    "select_cells",
    "format_level",
]

# Fallback bytes per float32 value when the load generator's encoders cannot be asked (orjson writes
# float32 in its shortest form: ~11 bytes with the separator for standard normal inputs).
JSON_BYTES_PER_VALUE = 11.0


@dataclass(frozen=True)
class Cell:
    """One load run of the matrix: a server under one configuration, a protocol, a batch, a load level."""

    cell_id: str
    server: str
    protocol: str
    batch: int
    mode: str
    rate: float | None
    concurrency: int | None
    server_config_name: str
    server_config: ServerConfig
    repetition: int
    body_bytes: int
    repeat_share: float | None = None  # share of requests reusing an input already sent (None: uniform pool)
    duration_s: float | None = None  # a search step's own measured duration (None: the matrix's duration_s)
    arm: str | None = None  # an A/A line's arm, "a" or "b" (None: the line has no twin)

    @property
    def group(self) -> tuple[str, str]:
        """Cells of one group share a running server: (config name, server)."""
        return (self.server_config_name, self.server)

    @property
    def line_id(self) -> str:
        """The line this cell belongs to, across load levels and repetitions: `tfserving-grpc-b1-default`
        (a repeat share and an A/A arm b are part of it: `...-rs0.5`, `...-armb`)."""
        share = "" if self.repeat_share is None else f"-rs{format_level(self.repeat_share)}"
        arm = "-armb" if self.arm == "b" else ""
        return f"{self.server}-{self.protocol}-b{self.batch}-{self.server_config_name}{share}{arm}"

    @property
    def level(self) -> str:
        """The load level for people: `100 req/s` or `concurrency 4`."""
        if self.mode == "open":
            return f"{format_level(self.rate or 0)} req/s"
        return f"concurrency {self.concurrency}"

    def at_rate(self, rate: float, duration_s: float | None = None) -> Cell:
        """The same line at another Poisson rate (a max-rate search step): an ordinary open-loop cell."""
        tag = f"r{format_level(rate)}"
        cell_id = _cell_id(self.server, self.protocol, self.batch, self.server_config_name, tag,
                           self.repetition, self.repeat_share, self.arm)
        return replace(self, cell_id=cell_id, rate=float(rate), duration_s=duration_s)

    def describe(self) -> dict[str, Any]:
        """The cell's settings as `cell.json` records them (docs/architecture.md)."""
        extra: dict[str, Any] = {} if self.duration_s is None else {"duration_s": self.duration_s}
        if self.arm is not None:
            extra["arm"] = self.arm
        return {
            **extra,
            "cell_id": self.cell_id,
            "server": self.server,
            "protocol": self.protocol,
            "mode": self.mode,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "batch": self.batch,
            "server_config": self.server_config.model_dump(),
            "server_config_name": self.server_config_name,
            "repetition": self.repetition,
            "body_bytes_estimate": self.body_bytes,
            "repeat_share": self.repeat_share,
        }


@dataclass(frozen=True)
class SkippedCell:
    """A cell the matrix names but will not run, and why (e.g. a 5 GB JSON body)."""

    cell_id: str
    reason: str

    def describe(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CellPlan:
    """The expanded matrix: cells to run, in order, and cells skipped with their reasons."""

    cells: tuple[Cell, ...]
    skipped: tuple[SkippedCell, ...]

    def estimated_seconds(self, experiment: Experiment, *, server_start_s: float = 20.0,
                          cell_overhead_s: float = 4.0, chunk_overhead_s: float = 1.5) -> float:
        """Rough wall time: warm-up + duration + overhead per cell (a max-rate search: its typical steps
        per line, `inferload.search.estimated_seconds`), plus for every block of a repetition x server
        config (inferload/rounds.py) one server start (its servers start together) and the servers'
        warm-ups until stable (counted at one chunk each), plus a calibration before the first round
        and after each."""
        blocks = {(cell.repetition, cell.server_config_name) for cell in self.cells}
        if experiment.rounds.isolation == "rewarm" and len(experiment.server_configs) == 1:
            starts = 1
        else:
            starts = len(blocks)
        rule = experiment.server_warmup
        warmed = 0
        if rule.enabled:
            per_block = {(cell.repetition, cell.server_config_name,
                          cell.server if rule.per == "server" else cell.line_id) for cell in self.cells}
            warmed = len(per_block)
        warm_s = warmed * (rule.window_s * (rule.windows + 1) + chunk_overhead_s)
        search = experiment.load.search
        if search is not None:
            from inferload.search import estimated_seconds, expected_steps

            rounds = len(blocks) * expected_steps(search)
            cells_s = estimated_seconds(experiment, len(self.cells), cell_overhead_s=cell_overhead_s)
        else:
            rounds = len(blocks) * len(experiment.load.levels)
            per_cell = experiment.warmup_s + experiment.longest_duration_s + cell_overhead_s  # early_stop
            # counts its cap
            cells_s = len(self.cells) * per_cell
        calibration = experiment.calibration
        calibrate_s = (rounds + 1) * (calibration.budget_s + 0.5) if calibration.enabled else 0.0
        return cells_s + starts * server_start_s + warm_s + calibrate_s


def format_level(value: float) -> str:
    """`100.0` -> `100`, `2.5` -> `2.5`: short, stable text for cell ids."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def estimate_body_bytes(server: str, protocol: str, batch: int, features: int) -> int:
    """Request body size of one request, without building it (at batch 1024 it may be gigabytes).

    Linear in batch and features: size = fixed + batch x (per instance + features x per value), with
    the coefficients measured once on tiny bodies from the load generator's own encoders.
    """
    fixed, per_instance, per_value = _body_coefficients(server, protocol)
    return int(fixed + batch * (per_instance + features * per_value))


@functools.cache
def _body_coefficients(server: str, protocol: str) -> tuple[float, float, float]:
    try:
        from loadtest import encode_body, make_inputs
    except ImportError:
        return _fallback_coefficients(server, protocol)
    small, large = 512, 1024

    def size(batch: int, features: int) -> int:
        return len(encode_body(server, protocol, make_inputs(features, batch, 1, seed=0)[0]))

    per_value = (size(1, large) - size(1, small)) / (large - small)
    per_instance = size(2, small) - size(1, small) - per_value * small
    fixed = size(1, small) - per_instance - per_value * small
    return fixed, per_instance, per_value


def _fallback_coefficients(server: str, protocol: str) -> tuple[float, float, float]:
    if protocol == "rest-json":
        return 20.0, 2.0, JSON_BYTES_PER_VALUE
    if protocol == "rest-binary" and server == "tfserving":
        return 60.0, 12.0, 4 * 4 / 3  # base64 strings in JSON: TF Serving's REST takes JSON only
    return 64.0, 0.0, 4.0


def _cell_id(server: str, protocol: str, batch: int, config: str, level: str, repetition: int,
             repeat_share: float | None = None, arm: str | None = None) -> str:
    share = "" if repeat_share is None else f"-rs{format_level(repeat_share)}"
    twin = "-armb" if arm == "b" else ""  # arm a keeps the plain id: it is the line itself
    return f"{server}-{protocol}-b{batch}-{config}-{level}{share}-rep{repetition}{twin}"


def _server_limit(experiment: Experiment, server: str, protocol: str) -> int | None:
    """The largest body `server` takes over `protocol` where inferload configures the server (local and
    compose targets); None for an external target, whose limits are the user's."""
    if experiment.target.kind == "external":
        return None
    return REQUEST_LIMITS.get((server, protocol))


def expand_cells(experiment: Experiment) -> CellPlan:
    """Every cell of the matrix, ordered to minimize server restarts; oversized bodies are skipped."""
    cells: list[Cell] = []
    skipped: list[SkippedCell] = []
    limit = None if experiment.max_body_mb is None else experiment.max_body_mb * 1_000_000
    for config in experiment.server_configs:
        for server in experiment.servers:
            for repetition in range(experiment.repetitions):
                for protocol in experiment.protocols:
                    for batch in experiment.batch_sizes:
                        body = estimate_body_bytes(server, protocol, batch, experiment.model.features)
                        for level, share in itertools.product(experiment.load.levels,
                                                              experiment.repeat_shares or (None,)):
                            open_loop = experiment.load.mode == "open"
                            tag = f"r{format_level(level)}" if open_loop else f"c{int(level)}"
                            cell_id = _cell_id(server, protocol, batch, config.name, tag, repetition, share)
                            if limit is not None and body > limit:
                                skipped.append(SkippedCell(cell_id, (
                                    f"request body ~{body / 1e6:,.1f} MB exceeds max_body_mb "
                                    f"{experiment.max_body_mb:g} ({protocol}, batch {batch})")))
                                continue
                            server_limit = _server_limit(experiment, server, protocol)
                            if server_limit is not None and body > server_limit:
                                skipped.append(SkippedCell(cell_id, (
                                    f"request body ~{body / 1e6:,.1f} MB is over {server}'s {protocol} "
                                    f"limit of {server_limit / 1e6:,.1f} MB as inferload configures it "
                                    f"(serving/limits.py; batch {batch})")))
                                continue
                            cell = Cell(
                                cell_id=cell_id,
                                server=server,
                                protocol=protocol,
                                batch=batch,
                                mode=experiment.load.mode,
                                rate=float(level) if open_loop else None,
                                concurrency=None if open_loop else int(level),
                                server_config_name=config.name,
                                server_config=config,
                                repetition=repetition,
                                body_bytes=body,
                                repeat_share=share,
                            )
                            cells.extend(_arms(cell, experiment))
    return CellPlan(tuple(cells), tuple(skipped))


def _arms(cell: Cell, experiment: Experiment) -> tuple[Cell, ...]:
    """The cell, or, for a line the matrix's `aa` names, its arms a (the line itself) and b (its twin)."""
    if experiment.aa is None or not _matches(cell.line_id, experiment.aa.lines):
        return (cell,)
    twin_id = _cell_id(cell.server, cell.protocol, cell.batch, cell.server_config_name, _level_tag(cell),
                       cell.repetition, cell.repeat_share, "b")
    return (replace(cell, arm="a"), replace(cell, arm="b", cell_id=twin_id))


def _level_tag(cell: Cell) -> str:
    """`r40` (Poisson rate) or `c4` (concurrency): the load level as cell ids write it."""
    return f"r{format_level(cell.rate or 0)}" if cell.mode == "open" else f"c{cell.concurrency}"


def _matches(text: str, pattern: str) -> bool:
    """A shell-style pattern (`*grpc*`); a pattern without wildcards matches as a substring."""
    glob = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
    return fnmatch.fnmatchcase(text, glob)


def select_cells(plan: CellPlan, pattern: str | None) -> CellPlan:
    """Keep the cells whose id matches a shell-style pattern (`*grpc*`); substrings match too."""
    if not pattern:
        return plan
    return CellPlan(
        tuple(cell for cell in plan.cells if _matches(cell.cell_id, pattern)),
        tuple(skip for skip in plan.skipped if _matches(skip.cell_id, pattern)),
    )
