"""Rounds: the order a matrix's cells run in, so that a slow minute falls on all lines and not on one.

The machine drifts (a shared VM's speed moves by a factor of two within minutes), so measuring line A
for five minutes and then line B for five compares two machines as much as two lines. Instead:
- the cells are split into blocks, one per repetition x server config (repetition first): each block
  runs on servers started for it (`isolation: restart`, the default) or kept from the block before
  and warmed again (`rewarm`), so repetitions are independent measurements;
- inside a block every line (server x protocol x batch [x repeat share] [x A/A arm]) is visited once
  per round, in a random order drawn from the schedule's seed and the round's index (so a rerun draws
  the same orders, and resume finds its place): a rate sweep's round runs every line at one rate,
  lowest rate first; a max-rate search's round advances every line still searching by one step
  (`SearchRounds`, with `inferload/search.py`'s `plan`).
Each cell records its round and its position in the round (cell.json), and the manifest the rounds'
orders, so lines compared at one rate ran back to back, within one round.

The schedule here is pure (no I/O): `inferload/runner.py` runs it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inferload.cells import Cell
from inferload.experiments import RateSearch
from inferload.search import Judgement, SearchPlan, describe_result, plan
from inferload_formats import CELL_DONE, cell_status

__all__ = [
    "Block",
    "LevelRound",
    "SearchRounds",
    "blocks",
    "level_rounds",
    "round_order",
    "sweep_order",
]


@dataclass(frozen=True)
class Block:
    """The cells one set of running servers measures: one repetition of one server config."""

    repetition: int
    config_name: str
    cells: tuple[Cell, ...]

    @property
    def servers(self) -> tuple[str, ...]:
        """The servers the block needs, in the matrix's order."""
        return tuple(dict.fromkeys(cell.server for cell in self.cells))

    @property
    def line_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cell.line_id for cell in self.cells))

    def lines(self) -> dict[str, Cell]:
        """One cell per line (its first level): what a line's warm-up and search start from."""
        first: dict[str, Cell] = {}
        for cell in self.cells:
            first.setdefault(cell.line_id, cell)
        return first


def blocks(cells: Sequence[Cell]) -> list[Block]:
    """The cells grouped by repetition, then server config (in the order the cells list them)."""
    grouped: dict[tuple[int, str], list[Cell]] = {}
    for cell in sorted(cells, key=lambda c: c.repetition):  # stable: the matrix's order within a repetition
        grouped.setdefault((cell.repetition, cell.server_config_name), []).append(cell)
    return [Block(repetition, config, tuple(group)) for (repetition, config), group in grouped.items()]


def round_order(line_ids: Sequence[str], seed: int, round_index: int) -> list[str]:
    """`line_ids` in the random order of round `round_index`: the same seed and round give the same order
    on every machine and Python version (random.Random seeded with a string hashes it with SHA-512)."""
    order = list(line_ids)
    random.Random(f"inferload-rounds/{seed}/{round_index}").shuffle(order)
    return order


def _level(cell: Cell) -> float:
    return float((cell.rate if cell.mode == "open" else cell.concurrency) or 0)


@dataclass(frozen=True)
class LevelRound:
    """One round of a rate sweep: every line of a block at one load level, in the round's order."""

    level: float
    cells: tuple[Cell, ...]


def level_rounds(block: Block, seed: int, first_round: int) -> list[LevelRound]:
    """A sweep block's rounds, lowest level first; round k of the block has index `first_round + k`."""
    by_level: dict[float, dict[str, Cell]] = {}
    for cell in block.cells:
        by_level.setdefault(_level(cell), {})[cell.line_id] = cell
    rounds = []
    for k, level in enumerate(sorted(by_level)):
        cells = by_level[level]
        order = round_order(list(cells), seed, first_round + k)
        rounds.append(LevelRound(level, tuple(cells[line] for line in order)))
    return rounds


def sweep_order(cells: Sequence[Cell], seed: int) -> list[tuple[int, Cell]]:
    """A rate sweep's cells as (round, cell) in the order they run (a search's steps are chosen as it
    goes: only its rounds' first steps are known beforehand)."""
    ordered: list[tuple[int, Cell]] = []
    round_index = 0
    for block in blocks(cells):
        for level_round in level_rounds(block, seed, round_index):
            ordered += [(round_index, cell) for cell in level_round.cells]
            round_index += 1
    return ordered


def _is_done(cell_dir: Path) -> bool:
    return cell_status(cell_dir)[0] == CELL_DONE


@dataclass
class SearchRounds:
    """Every line's max-rate search, advanced one step per line per round.

    `starts` are the lines' cells at the search's start rate. A line's next step is `plan` replayed over
    its outcomes so far, so a search is the same whichever order the lines take. Steps already done in
    `cells_dir` (a resumed run) are judged again and not rerun.
    """

    starts: Sequence[Cell]
    search: RateSearch
    cells_dir: Path
    duration_for: Callable[[float], float]
    judge: Callable[[Path], Judgement]
    note: Callable[[str], None] = print
    outcomes: dict[str, dict[float, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._starts = {cell.line_id: cell for cell in self.starts}
        for line in self._starts:
            self.outcomes.setdefault(line, {})

    def active(self) -> list[str]:
        """The lines whose search has a next step, in the matrix's order."""
        return [line for line in self._starts if plan(self.search, self.outcomes[line]).next_rate is not None]

    def next_step(self, line: str) -> tuple[Cell, str]:
        """The line's next step cell and its phase (`step up`, `step down`, `bisect`)."""
        step_plan = plan(self.search, self.outcomes[line])
        if step_plan.next_rate is None:
            raise ValueError(f"the search of {line} is finished")
        rate = step_plan.next_rate
        return self._starts[line].at_rate(rate, self.duration_for(rate)), step_plan.phase or ""

    def step_is_done(self, step: Cell) -> bool:
        return _is_done(self.cells_dir / step.cell_id)

    def record(self, step: Cell, phase: str, *, reused: bool) -> Judgement:
        """Judge a step that ran (or ran before: `reused`), and say so on the console."""
        judgement = self.judge(self.cells_dir / step.cell_id)
        self.outcomes[step.line_id][float(step.rate or 0)] = judgement.outcome
        detail = f" - {judgement.detail}" if judgement.detail else ""
        again = " (recorded earlier)" if reused else ""
        self.note(f"  {_label(step)}: {phase} {step.rate:g} req/s: {judgement.outcome}{detail}{again}")
        final = plan(self.search, self.outcomes[step.line_id])
        if final.next_rate is None:
            self.note(f"{_label(step)}: {describe_result(final)}")
        return judgement

    def results(self) -> Mapping[str, SearchPlan]:
        return {line: plan(self.search, outcomes) for line, outcomes in self.outcomes.items()}


def _label(cell: Cell) -> str:
    share = "" if cell.repeat_share is None else f" repeat {cell.repeat_share:g}"
    rep = f" rep {cell.repetition}" if cell.repetition else ""
    arm = f" arm {cell.arm}" if cell.arm else ""
    return f"{cell.server} {cell.protocol} b{cell.batch} [{cell.server_config_name}]{share}{arm}{rep}"
