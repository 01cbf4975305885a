"""Verdicts from a rate sweep: max rate under the SLO, p99 at half of it, best and batching choices."""

from __future__ import annotations

import pytest
from synthetic_results import ResultsBuilder

from analysis import read_results
from analysis.verdicts import batching_verdicts, best_configuration, sweep_verdicts

# SLO of the synthetic experiments: p99 <= 100 ms


@pytest.mark.parametrize(
    ("sweep", "expected_max", "expected_half_rate", "expected_p99_at_half", "expected_first_miss"),
    [
        # (rate, p99 ms, generator valid): walking up, the last rate before the first miss
        ([(10, 5, True), (20, 8, True), (40, 30, True), (80, 250, True)], 40.0, 20.0, 8.0, 80.0),
        # the 40/s cell is generator-invalid (its p99 of 500 ms is not a server result): skipped, not a miss;
        # half of 80 is that invalid 40/s, so the nearest *usable* rate answers: 20/s (|20-40| < |80-40|)
        ([(10, 5, True), (20, 8, True), (40, 500, False), (80, 60, True), (160, 400, True)], 80.0, 20.0, 8.0,
         160.0),
        # max/2 = 20 is not measured: nearest is 25 (|25-20| = 5 < |10-20| = 10)
        ([(10, 5, True), (25, 9, True), (40, 30, True), (50, 300, True)], 40.0, 25.0, 9.0, 50.0),
        # a later recovery does not count: 40/s missed, so 80/s is beyond the max
        ([(10, 5, True), (20, 8, True), (40, 150, True), (80, 90, True)], 20.0, 10.0, 5.0, 40.0),
    ],
    ids=["plain", "invalid-cell-excluded", "nearest-half", "first-miss-ends"],
)
def test_max_rate_under_slo(
    results: ResultsBuilder,
    sweep: list[tuple[float, float, bool]],
    expected_max: float,
    expected_half_rate: float,
    expected_p99_at_half: float,
    expected_first_miss: float,
) -> None:
    for rate, p99, valid in sweep:
        results.cell(rate=rate, latency_ms=p99, valid=valid, invalid_reasons=() if valid else ["lateness"])
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert verdict.max_rate_under_slo == expected_max
    assert verdict.half_rate == expected_half_rate
    assert verdict.p99_at_half_ms == pytest.approx(expected_p99_at_half)
    assert verdict.first_miss_rate == expected_first_miss  # the bracket `run --refine` bisects
    assert len(verdict.excluded) == sum(1 for _, _, valid in sweep if not valid)


def test_invalid_cell_is_listed_with_its_reason(results: ResultsBuilder) -> None:
    results.cell(rate=10, latency_ms=5)
    results.cell(rate=20, latency_ms=5, valid=False, invalid_reasons=["generator lateness p99 9 ms"])
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert verdict.max_rate_under_slo == 10.0
    assert "generator lateness p99 9 ms" in verdict.excluded[0]


def test_failed_cell_is_excluded(results: ResultsBuilder) -> None:
    results.cell(rate=10, latency_ms=5)
    results.cell(rate=20, latency_ms=5, status="failed")
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert verdict.max_rate_under_slo == 10.0
    assert "cell failed: server died" in verdict.excluded[0]


@pytest.mark.parametrize(
    ("sweep", "expected_note"),
    [
        ([(10, 150.0, True), (20, 200.0, True)], "the lowest usable rate, 10/s, already missed the SLO"),
        ([(10, 5.0, False), (20, 5.0, False)], "no usable cells"),
    ],
)
def test_no_rate_under_slo_gives_null_with_a_reason(
    results: ResultsBuilder, sweep: list[tuple[float, float, bool]], expected_note: str
) -> None:
    for rate, p99, valid in sweep:
        results.cell(rate=rate, latency_ms=p99, valid=valid)
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert verdict.max_rate_under_slo is None
    assert verdict.p99_at_half_ms is None
    assert expected_note in (verdict.max_rate_note or "")


def test_a_sweep_that_never_missed_says_the_maximum_is_a_lower_bound(results: ResultsBuilder) -> None:
    results.cell(rate=10, latency_ms=5)
    results.cell(rate=20, latency_ms=6)
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert verdict.max_rate_under_slo == 20.0
    assert "at least this" in (verdict.max_rate_note or "")


def test_best_configuration_has_most_predictions_per_second_under_slo(results: ResultsBuilder) -> None:
    """grpc batch 1 sustains 40/s (40 predictions/s); rest-json batch 4 sustains 20/s (80 predictions/s)."""
    for rate, p99 in [(10, 5), (20, 8), (40, 20)]:
        results.cell(protocol="grpc", rate=rate, latency_ms=p99)
    for rate, p99 in [(10, 5), (20, 8), (40, 200)]:
        results.cell(protocol="rest-json", batch=4, rate=rate, latency_ms=p99)
    best = best_configuration(sweep_verdicts(read_results(results.root).cells))
    assert best.group is not None
    assert (best.group.protocol, best.group.batch, best.max_rate_under_slo) == ("rest-json", 4, 20.0)
    assert best.predictions_per_s == pytest.approx(80.0)


def test_batching_matrix_names_latency_and_throughput_optimal_configs(results: ResultsBuilder) -> None:
    """`nobatch` is faster at low load (p99 5 ms vs 12 ms at 10/s and 20/s) but misses at 40/s;
    `batch8` holds the SLO up to 80/s. Both sustain 20/s, the highest common rate within the SLO ->
    latency-optimal is judged there: nobatch (6 ms < 14 ms). Throughput-optimal: batch8 (80/s > 20/s)."""
    for rate, p99 in [(10, 5), (20, 6), (40, 300), (80, 900)]:
        results.cell(rate=rate, latency_ms=p99, config="nobatch")
    for rate, p99 in [(10, 12), (20, 14), (40, 20), (80, 40)]:
        results.cell(rate=rate, latency_ms=p99, config="batch8")
    cells = read_results(results.root).cells
    (choice,) = batching_verdicts(cells, sweep_verdicts(cells))
    assert choice.configurations == ("batch8", "nobatch")
    assert choice.common_rate == 20.0
    assert (choice.latency_optimal, choice.latency_optimal_p99_ms) == ("nobatch", pytest.approx(6.0))
    assert (choice.throughput_optimal, choice.throughput_optimal_max_rate) == ("batch8", 80.0)
