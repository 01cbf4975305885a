"""The matrix's progress display: cell i/N, what it runs, and the time left for the whole matrix.

A live rich bar on a terminal; one plain line per step otherwise (CI logs stay readable); nothing
when switched off (tests). A max-rate search counts `steps` against an estimate (`step 5/~18`): its
step count is only known when each line's search ends, so the total grows when it is passed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MatrixProgress"]


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@dataclass
class MatrixProgress:
    """Context manager fed by the runner: `show` what runs now, `advance` when a cell ends, `note` events."""

    total: int
    estimate_per_cell_s: float
    enabled: bool = True
    live: bool | None = None  # None: a live bar when stderr is a terminal
    unit: str = "cells"  # "steps" for a max-rate search: `total` is then an estimate
    started: float = field(default_factory=time.monotonic)
    finished: int = 0
    cells_started: float = field(default_factory=time.monotonic)
    _bar: Any = None
    _task: Any = None

    def __enter__(self) -> MatrixProgress:
        live = sys.stderr.isatty() if self.live is None else self.live
        if self.enabled and live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[left]}"), console=Console(stderr=True),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=max(self.total, 1), left="")
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = _clock(time.monotonic() - self.started)
        if self._bar is not None:
            self._bar.update(self._task, description=self._done_text(),
                             completed=self.finished, left=f"in {elapsed}")
            self._bar.__exit__(None, None, None)
        elif self.enabled and self.total:
            print(f"{self._done_text()} in {elapsed}", file=sys.stderr, flush=True)

    def _done_text(self) -> str:
        if self.unit == "steps":
            return f"{self.finished} steps"
        return f"{self.finished}/{self.total} cells"

    def counter(self, index: int) -> str:
        """`cell 3/12`, or `step 5/~18` for a search (whose total is an estimate)."""
        if self.unit == "steps":
            return f"step {index}/~{max(self.total, index)}"
        return f"cell {index}/{self.total}"

    def start_cells(self) -> None:
        """Cells start now: export and floor time must not inflate the per-cell estimate."""
        self.cells_started = time.monotonic()

    def left_s(self) -> float:
        """Time left: the observed mean per finished cell (server starts included), else the estimate."""
        per_cell = self.estimate_per_cell_s
        if self.finished:
            per_cell = (time.monotonic() - self.cells_started) / self.finished
        return max(self.total - self.finished, 0) * per_cell

    def show(self, text: str) -> None:
        left = f"~{_clock(self.left_s())} left"
        if self._bar is not None:
            self._bar.update(self._task, description=text, completed=self.finished, left=left)
        elif self.enabled:
            print(f"{text} [{left}]", file=sys.stderr, flush=True)

    def advance(self) -> None:
        self.finished += 1
        if self.finished > self.total:  # a search ran more steps than estimated
            self.total = self.finished
        if self._bar is not None:
            self._bar.update(self._task, completed=self.finished, total=max(self.total, 1))

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        elif self.enabled:
            print(text, file=sys.stderr, flush=True)
