"""Read a whole results directory (`results/<name>/`) into run and cell summaries (`Results`).

Every file is read through its owner's definition (`analysis._files`, `analysis._records`).

A single load-run directory (records but no `manifest.json`, as `inferload load --out DIR` writes)
is read as a one-cell experiment, so every run can be reported on the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from analysis._files import (
    FloorTime,
    PayloadCost,
    read_calibration,
    read_cell,
    read_floor,
    read_manifest,
    read_payloads,
)
from analysis._records import request_files
from analysis.drift import machine_flags
from analysis.errors import ResultsError
from analysis.keys import CellKey
from analysis.repetitions import CellSummary, summarize_cells
from analysis.stats import RunSummary, Slo, summarize_run
from inferload_formats import TFSERVING_KINDS, CellRecord, Manifest, ManifestModel
from models.calibration import CalibrationLog


@dataclass(frozen=True)
class Results:
    """One results directory (an experiment's, or a single load run's), read and summarized."""

    path: Path
    manifest: Manifest | None  # None: a single load run, which has none
    slo: Slo
    runs: tuple[RunSummary, ...]
    cells: tuple[CellSummary, ...]
    floor: tuple[FloorTime, ...]
    payloads: tuple[PayloadCost, ...]
    calibration: CalibrationLog | None = None  # the machine's speed between rounds (None: not measured)

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest is not None else self.path.name

    @property
    def model(self) -> ManifestModel | None:
        return self.manifest.model if self.manifest is not None else None

    @property
    def versions(self) -> dict[str, str]:
        return self.manifest.versions if self.manifest is not None else {}

    @property
    def created_at(self) -> str | None:
        return self.manifest.created_at if self.manifest is not None else None

    @property
    def tfserving_kind(self) -> str | None:
        """The TF Serving kind that ran: the manifest's, unless it holds a setting (e.g. "auto") rather
        than a resolved kind; then the kind the TF Serving cells recorded."""
        kind = self.manifest.tfserving_kind if self.manifest is not None else None
        if kind in TFSERVING_KINDS:
            return str(kind)
        recorded = Counter(r.server_kind for r in self.runs if r.key.server == "tfserving" and r.server_kind)
        if recorded:
            return recorded.most_common(1)[0][0]
        return str(kind) if kind else None

    @property
    def skipped_cells(self) -> tuple[tuple[str, str], ...]:
        """Cells the runner planned but did not run, with its reason (from `manifest.json`)."""
        skipped = self.manifest.skipped_cells if self.manifest is not None else []
        return tuple((s.cell_id, s.reason) for s in skipped)

    @property
    def exclusion_counts(self) -> dict[str, int]:
        """How many runs are excluded, by short reason (e.g. {"generator invalid": 22})."""
        return dict(Counter(r.exclusion_label for r in self.runs if r.exclusion_label).most_common())

    @property
    def excluded_runs(self) -> tuple[RunSummary, ...]:
        return tuple(r for r in self.runs if not r.usable)


def _not_run_summary(run_dir: Path, cell: CellRecord | None, status: str, reason: str) -> RunSummary:
    """A cell that left no readable records (failed before load, or interrupted before writing): what
    it was is known only from its cell.json (nothing at all for an interrupted one)."""
    key = CellKey(
        server=cell.server if cell else "None",
        protocol=cell.protocol if cell else "None",
        mode=cell.mode if cell else "closed",
        rate=cell.rate if cell else None,
        concurrency=cell.concurrency if cell else None,
        batch=cell.batch if cell else 1,
        server_config_name=cell.server_config_name if cell else "default",
        repeat_share=cell.repeat_share if cell else None,
        arm="b" if cell and cell.arm == "b" else "",
    )
    return RunSummary(
        run_dir=str(run_dir),
        cell_id=cell.cell_id if cell else run_dir.name,
        key=key,
        repetition=cell.repetition if cell else 0,
        status=status,
        error=reason,
        server_kind=None,
        stats=None,
        generator_valid=None,
        invalid_reasons=(),
        round=cell.round if cell else None,
        position=cell.position if cell else None,
        arm=cell.arm if cell else None,
        machine=cell.machine if cell else None,
    )


def _summarize_cell_dir(run_dir: Path, slo: Slo) -> RunSummary:
    cell = read_cell(run_dir)
    if cell is None:
        status, reason = "incomplete", "no cell.json: the cell was interrupted (it is rerun on resume)"
        if not request_files(run_dir):
            return _not_run_summary(run_dir, None, status, reason)
        run = summarize_run(run_dir, slo)
        return _replace_status(run, status, reason)
    if not request_files(run_dir):
        return _not_run_summary(run_dir, cell, cell.status, cell.error or "no request records were written")
    return summarize_run(run_dir, slo)


def _replace_status(run: RunSummary, status: str, reason: str) -> RunSummary:
    return replace(run, status=status, error=reason)


def read_results(results_dir: Path | str) -> Results:
    """Read and summarize every cell of a results directory; refuse unknown formats with `ResultsError`."""
    path = Path(results_dir)
    if not path.exists():
        raise ResultsError(f"{path}: no such results directory; pass the directory `inferload run` wrote")
    if not path.is_dir():
        raise ResultsError(f"{path}: not a directory; pass the results directory, not a file in it")
    manifest: Manifest | None
    if (path / "manifest.json").is_file():
        manifest = read_manifest(path)
        slo = manifest.slo
        cells_dir = path / "cells"
        cell_dirs = sorted(p for p in cells_dir.iterdir() if p.is_dir()) if cells_dir.is_dir() else []
        if not cell_dirs:
            raise ResultsError(f"{path}: the experiment has no cells yet (cells/ is empty); run it first")
    elif request_files(path):
        manifest, slo, cell_dirs = None, Slo(), [path]
    elif any(path.iterdir()):
        raise ResultsError(
            f"{path}: neither manifest.json (an experiment) nor requests*.jsonl (a load run) found; "
            "pass a directory written by `inferload run` or `inferload load`"
        )
    else:
        raise ResultsError(f"{path}: the directory is empty; run an experiment into it first")
    single_run = cell_dirs == [path]
    runs = tuple(summarize_run(d, slo) if single_run else _summarize_cell_dir(d, slo) for d in cell_dirs)
    payloads: dict[tuple[str, str, int], PayloadCost] = {}
    for d in cell_dirs:
        for cost in read_payloads(d):
            payloads.setdefault((cost.server, cost.protocol, cost.batch), cost)
    return Results(
        path=path,
        manifest=manifest,
        slo=slo,
        runs=runs,
        cells=tuple(summarize_cells(runs, slo, flagged=machine_flags(runs))),
        floor=tuple(read_floor(path)),
        payloads=tuple(sorted(payloads.values(), key=lambda c: (c.server, c.protocol, c.batch))),
        calibration=None if single_run else read_calibration(path),
    )
