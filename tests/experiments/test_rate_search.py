"""The max-rate search's logic (inferload/search.py), on simulated servers: it steps up geometrically
until the SLO is not met, steps down when the start already misses, bisects between the last rate met
and the first not met, treats a generator that cannot keep up as an upper bound (not a miss), sizes
each step for the sample rule, and resumes from the steps already recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferload.cells import Cell, expand_cells
from inferload.experiments import RateSearch, parse_experiment
from inferload.search import (
    INVALID,
    MET,
    MISSED,
    Judgement,
    describe_result,
    plan,
    search_steps,
    step_duration_s,
)
from inferload_formats import write_cell

MATRIX = """
name: search
model: {classes: 64, features: 1024, seed: 0}
servers: [torchserve]
protocols: [grpc, rest-json]
load: {mode: open, search: {start: 10, factor: 2, max: 640, bisect_steps: 3}}
batch_sizes: [1]
warmup_s: 1
duration_s: 3
"""


def simulate(search: RateSearch, capacity: float, generator_limit: float = float("inf")) -> tuple[list, Any]:
    """Run the pure plan against a server meeting the SLO up to `capacity` req/s; returns (rates, end)."""
    outcomes: dict[float, str] = {}
    tried = []
    while (step := plan(search, outcomes)).next_rate is not None:
        rate = step.next_rate
        tried.append(rate)
        outcomes[rate] = INVALID if rate > generator_limit else (MET if rate <= capacity else MISSED)
        assert len(tried) < 50, "the search must end"
    return tried, plan(search, outcomes)


@pytest.mark.parametrize(
    ("capacity", "tried", "low", "high"),
    [
        # climb 10..80, 160 misses, then 120 met, 140 missed, 130 met
        (130, [10, 20, 40, 80, 160, 120, 140, 130], 130, 140),
        # climb to 40, 80 misses; 60 met, 70 met, 75 missed
        (72, [10, 20, 40, 80, 60, 70, 75], 70, 75),
        # the start already misses: step down to 5, then bisect [5, 10)
        (6, [10, 5, 7.5, 6.2, 5.6], 5.6, 6.2),
        # met up to max: no bisection, the maximum is at least max
        (10_000, [10, 20, 40, 80, 160, 320, 640], 640, None),
        # nothing met down to min (start / factor^2 = 2.5)
        (1, [10, 5, 2.5], None, 2.5),
    ],
)
def test_the_search_climbs_then_bisects(capacity, tried, low, high) -> None:
    search = RateSearch(start=10, factor=2, max=640, bisect_steps=3)
    rates, end = simulate(search, capacity)
    assert rates == tried
    assert (end.low, end.high) == (low, high)


def test_the_last_climbing_step_is_max_when_the_ladder_jumps_over_it() -> None:
    rates, end = simulate(RateSearch(start=10, factor=2, max=500, bisect_steps=0), 10_000)
    assert rates == [10, 20, 40, 80, 160, 320, 500]
    assert (end.low, end.high) == (500, None)


def test_no_bisection_when_bisect_steps_is_zero() -> None:
    rates, end = simulate(RateSearch(start=10, factor=2, max=640, bisect_steps=0), 130)
    assert rates == [10, 20, 40, 80, 160]
    assert (end.low, end.high) == (80, 160)


def test_a_generator_that_cannot_keep_up_is_an_upper_bound_not_a_miss() -> None:
    search = RateSearch(start=10, factor=2, max=640, bisect_steps=1)
    rates, end = simulate(search, capacity=10_000, generator_limit=100)
    assert rates == [10, 20, 40, 80, 160, 120]
    assert (end.low, end.high, end.high_outcome) == (80, 120, INVALID)
    assert "not a miss" in describe_result(end)
    assert "missed" not in describe_result(end).split("(")[1]


def test_a_miss_is_reported_as_a_miss() -> None:
    _, end = simulate(RateSearch(start=10, factor=2, max=640, bisect_steps=0), 50)
    assert describe_result(end) == "max rate in [40, 80) req/s (80 missed)"


@pytest.mark.parametrize(
    ("rate", "minimum_s", "needed", "duration"),
    [
        (10, 3, 368, 44.5),   # 1.2 x 368 / 10 = 44.16 -> 44.5 (368: any request count)
        (100, 3, 368, 4.5),   # 4.416 -> 4.5
        (400, 3, 368, 3),     # the matrix's duration_s when it is longer
        (20, 30, 368, 30),
        (50, 2, 36, 2),       # p90 needs only 36
        (50, 2, None, 2),     # no sample rule for the percentile
    ],
)
def test_each_step_lasts_long_enough_for_the_slo_percentile(rate, minimum_s, needed, duration) -> None:
    assert step_duration_s(rate, minimum_s=minimum_s, needed=needed) == duration


def _write_done(cells_dir: Path, cell: Cell) -> None:
    """cell.json through its own definition, as the runner writes it for a finished step."""
    write_cell(cells_dir / cell.cell_id, {**cell.describe(), "status": "done", "error": None})


def test_resume_reuses_recorded_steps_and_runs_only_the_rest(tmp_path: Path) -> None:
    """Steps 10 and 20 were recorded by an interrupted run: the search judges them again, runs from 40."""
    experiment = parse_experiment(MATRIX)
    line = expand_cells(experiment).cells[0]
    cells_dir = tmp_path / "cells"
    for rate in (10, 20):
        _write_done(cells_dir, line.at_rate(rate))
    capacity = 50.0

    def judge(step_dir: Path) -> Judgement:
        rate = float(step_dir.name.split("-r")[-2])  # ...-default-r40-rep0
        return Judgement(MET if rate <= capacity else MISSED)

    reused: list[str] = []
    ran = []
    for step in search_steps([line], experiment.load.search, cells_dir=cells_dir, duration_for=lambda r: 3.0,
                             judge=judge, note=lambda _: None, reused=reused):
        ran.append(step.rate)
        _write_done(cells_dir, step)
    assert reused == [line.at_rate(10).cell_id, line.at_rate(20).cell_id]
    assert ran == [40, 80, 60, 50, 55]


def test_steps_are_ordinary_open_loop_cells_with_their_own_duration() -> None:
    experiment = parse_experiment(MATRIX)
    line = expand_cells(experiment).cells[0]
    assert line.rate == 10  # the matrix's cells are the lines at the start rate
    step = line.at_rate(160, 4.5)
    assert step.cell_id == "torchserve-grpc-b1-default-r160-rep0"
    assert (step.mode, step.rate, step.duration_s) == ("open", 160.0, 4.5)
    assert step.describe()["duration_s"] == 4.5


def test_the_estimate_of_a_search_counts_its_typical_steps() -> None:
    """demo-like: ladder 40, 80, 160, 320; typical path 40, 80, 160 then one bisection near 120."""
    from inferload.search import estimated_seconds

    experiment = parse_experiment(MATRIX.replace("start: 10, factor: 2, max: 640, bisect_steps: 3",
                                                 "start: 40, factor: 2, max: 320, bisect_steps: 1"))
    per_step = 1 + 4.0  # warm-up + overhead
    # each step holds 1.2 x 795 = 954 requests (p99 of independent requests): 24 s at 40, 12 at 80,
    # 6 at 160, 8 at 120
    expected = (per_step + 24.0) + (per_step + 12.0) + (per_step + 6.0) + (per_step + 8.0)
    assert estimated_seconds(experiment, 2) == 2 * expected


def test_a_search_that_could_not_test_any_rate_says_so_rather_than_reporting_a_miss() -> None:
    search = RateSearch(start=10, factor=2, max=640, bisect_steps=1)
    _, end = simulate(search, capacity=10_000, generator_limit=1)
    assert (end.low, end.high, end.high_outcome) == (None, 2.5, INVALID)
    assert describe_result(end).startswith("not determined: no step met the SLO down to 2.5 req/s")
    _, missed = simulate(search, capacity=1)
    assert describe_result(missed) == "no rate met the SLO down to the search's min (2.5 req/s missed)"


def test_a_miss_above_an_untestable_rate_still_bounds_the_maximum() -> None:
    """40 missed, then 20 could not be offered (generator invalid): below 40, not determined lower."""
    search = RateSearch(start=40, factor=2, max=320, min=20, bisect_steps=1)
    end = plan(search, {40.0: MISSED, 20.0: INVALID})
    assert (end.next_rate, end.low, end.high, end.lowest_miss) == (None, None, 20, 40)
    assert describe_result(end) == ("max rate below 40 req/s (40 missed); not determined lower: "
                                    "20 req/s was generator invalid (not a miss)")
