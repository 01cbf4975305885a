"""Across repetitions: mean, min..max and a Student-t 95 % interval of p99 and throughput."""

from __future__ import annotations

import pytest
from synthetic_results import ResultsBuilder

from analysis import read_results
from analysis.repetitions import Spread


@pytest.mark.parametrize(
    ("values", "mean", "low", "high"),
    [
        # n = 3, mean 20, s = 10, t(0.975, 2) = 4.3027 -> half-width 4.3027 * 10 / sqrt(3) = 24.842;
        # a latency or rate is never negative: the lower end is clamped at 0
        ([10.0, 20.0, 30.0], 20.0, 0.0, 20.0 + 24.842),
        # n = 3, mean 100, s = 10 -> 100 -/+ 24.842, nothing to clamp
        ([90.0, 100.0, 110.0], 100.0, 100.0 - 24.842, 100.0 + 24.842),
        # n = 2, mean 5, s = sqrt(2), t(0.975, 1) = 12.706 -> half-width 12.706 * sqrt(2) / sqrt(2) = 12.706
        ([4.0, 6.0], 5.0, 0.0, 5.0 + 12.706),
        # identical repetitions: no spread at all
        ([7.0, 7.0, 7.0, 7.0], 7.0, 7.0, 7.0),
    ],
)
def test_t_interval_of_the_mean(values: list[float], mean: float, low: float, high: float) -> None:
    spread = Spread.of(values)
    assert spread.n == len(values)
    assert spread.mean == pytest.approx(mean)
    assert (spread.min, spread.max) == (min(values), max(values))
    assert spread.ci95_low == pytest.approx(low, abs=1e-3)
    assert spread.ci95_high == pytest.approx(high, abs=1e-3)


def test_one_repetition_has_no_interval() -> None:
    spread = Spread.of([3.0])
    assert (spread.mean, spread.ci95_low, spread.ci95_high) == (3.0, None, None)


def test_repetitions_of_a_cell_are_aggregated(results: ResultsBuilder) -> None:
    """Three repetitions at 10/s with p99 10, 20, 30 ms -> one cell, mean p99 20 ms, range 10..30;
    a fourth, generator-invalid repetition (p99 900 ms) is left out of the spread and listed."""
    for repetition, latency in enumerate([10.0, 20.0, 30.0]):
        results.cell(rate=10, latency_ms=latency, repetition=repetition)
    results.cell(rate=10, latency_ms=900.0, repetition=3, valid=False, invalid_reasons=["lateness"])
    (cell,) = read_results(results.root).cells
    assert len(cell.runs) == 4
    assert (cell.p99_ms.n, cell.p99_ms.mean, cell.p99_ms.min, cell.p99_ms.max) == (3, 20.0, 10.0, 30.0)
    assert cell.throughput_rps.mean == pytest.approx(10.0)
    assert cell.usable and cell.met_slo
    assert cell.exclusion_reasons == ("repetition 3: lateness",)


def test_one_missed_repetition_makes_the_cell_miss(results: ResultsBuilder) -> None:
    results.cell(rate=10, latency_ms=50.0, repetition=0)
    results.cell(rate=10, latency_ms=150.0, repetition=1)
    (cell,) = read_results(results.root).cells
    assert not cell.met_slo
