"""The machine-speed timeline of a run: its calibration points (no load) and each cell's own-window probe
on one clock, the flagged cells marked, and the run's calibration figure the regression gate compares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from synthetic_results import WINDOW_START_NS, ResultsBuilder

from analysis import read_results
from analysis.drift import TOLERANCE, calibration_ms, machine_timeline
from analysis.plots import machine_speed

S = 1_000_000_000


def machine(start_s: float, probe_ms: float | None) -> dict[str, Any]:
    start = WINDOW_START_NS + round(start_s * S)
    return {"window_ns": [start, start + 10 * S], "cpu_count": 2, "steal_share": 0.0, "load_average_1m": 1.0,
            "other_cpu_cores": 0.0, "calibration": None,
            "probe": None if probe_ms is None else {"batch": 1, "median_ms": probe_ms, "p90_ms": probe_ms,
                                                    "n": 10}}


def test_the_timeline_puts_calibrations_and_cells_on_one_clock(tmp_path: Path) -> None:
    """Calibration points at 0, 60, 120 s (2.6, 2.7, 2.5 ms: median 2.6); four cells of one line at one
    load, windows from 5, 65, 125, 185 s, probes 3.0, 3.1, 2.9 and 4.5 ms: the last is 48 % off the median
    of the line's four cells at that load (3.05 ms), beyond the 25 % tolerance, so it alone is flagged.
    Each cell sits at the middle of its window (10, 70, 130, 190 s)."""
    results = ResultsBuilder(tmp_path / "run")
    for k, (start, probe) in enumerate([(5, 3.0), (65, 3.1), (125, 2.9), (185, 4.5)]):
        results.cell(rate=40, latency_ms=10.0, repetition=k, round_index=k, machine=machine(start, probe))
    results.calibration([2.6, 2.7, 2.5])
    experiment = read_results(results.root)
    timeline = machine_timeline(experiment.runs, experiment.calibration)
    assert [(p.t_s, p.speed_ms) for p in timeline.calibrations] == [(0.0, 2.6), (60.0, 2.7), (120.0, 2.5)]
    assert [(p.t_s, p.speed_ms, p.flagged) for p in timeline.cells] == [
        (10.0, 3.0, False), (70.0, 3.1, False), (130.0, 2.9, False), (190.0, 4.5, True)]
    assert timeline.calibration_ms == pytest.approx(2.6) and timeline.batch == 1
    assert timeline.tolerance == TOLERANCE
    assert calibration_ms(experiment.calibration) == (pytest.approx(2.6), 1)
    figure = machine_speed(timeline)
    assert figure is not None and figure.startswith("data:image/png;base64,")


def test_a_run_without_the_probe_has_no_timeline(tmp_path: Path) -> None:
    results = ResultsBuilder(tmp_path / "run")
    results.cell(rate=40, latency_ms=10.0)
    experiment = read_results(results.root)
    timeline = machine_timeline(experiment.runs, experiment.calibration)
    assert not timeline.measured and timeline.calibration_ms is None
    assert machine_speed(timeline) is None


def test_the_report_shows_the_timeline_flags_and_how_repetitions_were_separated(tmp_path: Path) -> None:
    """The same run, reported: the machine-speed figure, the flagged cell with its reason, its cell no
    longer 'surely' anything, and the manifest's isolation in words."""
    import json

    from analysis import write_report

    results = ResultsBuilder(tmp_path / "run")
    for k, (start, probe) in enumerate([(5, 3.0), (65, 3.1), (125, 2.9), (185, 4.5)]):
        results.cell(rate=40, latency_ms=10.0, repetition=k, round_index=k, machine=machine(start, probe))
    results.calibration([2.6, 2.7, 2.5])
    manifest = json.loads((results.root / "manifest.json").read_text())
    manifest["experiment"] = {"repetitions": 4}
    manifest["schedule"] = {"seed": 0, "isolation": "restart", "arms": 1}
    (results.root / "manifest.json").write_text(json.dumps(manifest))
    paths = write_report(results.root)
    summary = json.loads(paths.json.read_text())
    speed = summary["machine_speed"]
    assert list(speed["flagged"]) == ["torchserve-grpc-b1-default-r40-rep3"]
    assert "ran 48% slower than in the 4 cells of this line at this load" in speed["flagged"][
        "torchserve-grpc-b1-default-r40-rep3"][0]
    assert "1 of 4 cell(s) ran while the machine was off by more than 25%" in " ".join(speed["described"])
    assert "4 repetitions; the servers were restarted between repetitions" in speed["described"]
    (cell,) = summary["cells"]
    assert cell["met_surely"] is None and any("the machine was off" in n for n in cell["notes"])
    html = paths.html.read_text()
    assert 'alt="machine speed during the run"' in html and "flagged cell" in html
    assert "## Machine speed" in paths.markdown.read_text()
