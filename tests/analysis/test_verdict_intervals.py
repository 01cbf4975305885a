"""Every verdict carries its interval: the max rate's bracket (one run: surely met .. surely missed;
repetitions: per-repetition max rates), "met, but not surely", and "A beats B" only when the
intervals separate, else "indistinguishable here"."""

from __future__ import annotations

import pytest
from synthetic_results import Request, ResultsBuilder, evenly

from analysis import read_results
from analysis.percentiles import quantile_interval
from analysis.report_model import build_model
from analysis.summary import summary_document
from analysis.verdicts import best_configuration, sweep_verdicts

# SLO of the synthetic experiments: p99 <= 100 ms


def test_one_run_brackets_the_max_rate_between_surely_met_and_surely_missed(results: ResultsBuilder) -> None:
    for rate, p99 in [(10, 5), (20, 5), (40, 30), (80, 250)]:
        results.cell(rate=rate, latency_ms=p99)
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert (verdict.max_rate_under_slo, verdict.max_rate_low, verdict.max_rate_high) == (40.0, 40.0, 80.0)
    assert verdict.max_rate_surely_met is True
    assert "one repetition" in (verdict.max_rate_method or "")
    assert (verdict.p99_at_max.value, verdict.p99_at_max.low, verdict.p99_at_max.high) == (30.0, 30.0, 30.0)


def straddling(count: int = 2100) -> list[Request]:
    """2,078 requests at 50 ms and 22 slow ones spread evenly over the window (every 95th): 99 ms and
    101-121 ms. p99 (rank 2,079, the 22nd largest) = 99 ms <= 100, but its upper confidence bound (a
    higher rank) is above 100 ms. Evenly spread, the slices agree: the window is worth about n / 2.2
    (f's upper bound) = 950 samples, enough for both ends."""
    tail = iter([99.0, *(101.0 + i for i in range(21))])
    step = count // 22
    latencies = [next(tail) if i % step == step - 1 else 50.0 for i in range(count)]
    times = evenly(count, 0.0, window_s=10.0)
    return [Request(r.at_ms, latency) for r, latency in zip(times, latencies, strict=True)]


def test_met_but_not_surely(results: ResultsBuilder) -> None:
    """At 40/s the p99 meets the SLO, but its interval straddles 100 ms: the verdict says so, and the
    bracket's low end falls back to 20/s, the highest rate surely met."""
    interval = quantile_interval([r.latency_ms for r in straddling()], 99.0)
    assert interval.value == 99.0 and interval.high is not None and interval.high > 100.0
    results.cell(rate=20, latency_ms=5)
    results.cell(rate=40, requests=straddling())
    results.cell(rate=80, latency_ms=250)
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert (verdict.max_rate_under_slo, verdict.max_rate_surely_met) == (40.0, False)
    assert (verdict.max_rate_low, verdict.max_rate_high) == (20.0, 80.0)
    assert "met, but not surely" in (verdict.max_rate_note or "")


def test_repetitions_give_the_range_of_per_repetition_max_rates(results: ResultsBuilder) -> None:
    """Repetitions 0 and 1 hold 40/s and miss 80/s; repetition 2 already misses 40/s. The cell at 40/s
    missed (one miss is a miss) so the headline is 20/s; per repetition: 40, 40, 20 -> bracket [20, 80)."""
    for repetition, p99s in enumerate([(5, 30, 250), (5, 30, 250), (5, 150, 250)]):
        for rate, p99 in zip((20, 40, 80), p99s, strict=True):
            results.cell(rate=rate, latency_ms=p99, repetition=repetition)
    (verdict,) = sweep_verdicts(read_results(results.root).cells)
    assert verdict.max_rate_under_slo == 20.0
    assert verdict.max_rate_by_repetition == (40.0, 40.0, 20.0)
    assert (verdict.max_rate_low, verdict.max_rate_high) == (20.0, 80.0)
    assert verdict.max_rate_method == "per-repetition max rates (3 repetitions)"
    assert verdict.p99_at_max.method == "Student-t over 3 repetitions"


@pytest.mark.parametrize(
    ("rest_json_sweep", "beats"),
    [
        # rest-json misses at 40/s: its true max < 40 <= grpc's surely-met 40/s -> grpc beats it
        ([(10, 5), (20, 8), (40, 200)], True),
        # rest-json also holds 40/s and misses 80/s, like grpc: same bracket [40, 80) -> indistinguishable
        ([(10, 5), (20, 8), (40, 60), (80, 200)], False),
    ],
)
def test_best_configuration_beats_others_only_when_brackets_separate(
    results: ResultsBuilder, rest_json_sweep: list[tuple[float, float]], beats: bool
) -> None:
    for rate, p99 in [(10, 5), (20, 8), (40, 20), (80, 200)]:
        results.cell(protocol="grpc", rate=rate, latency_ms=p99)
    for rate, p99 in rest_json_sweep:
        results.cell(protocol="rest-json", rate=rate, latency_ms=p99)
    best = best_configuration(sweep_verdicts(read_results(results.root).cells))
    assert best.group is not None and best.group.protocol == "grpc"
    assert [g.protocol for g in best.beats] == (["rest-json"] if beats else [])
    assert [g.protocol for g in best.indistinguishable_from] == ([] if beats else ["rest-json"])
    # the report calls a line beaten only on paired repetitions (analysis/paired.py): these cells ran in
    # no rounds, so whatever the brackets say, the report's best line is indistinguishable from the other
    sentence = build_model(results.root).verdict_lines()[-1]
    assert "indistinguishable here from torchserve rest-json" in sentence


def test_the_best_batch_is_indistinguishable_when_predictions_tie(results: ResultsBuilder) -> None:
    """Closed loop: batch 4 at 100 req/s and batch 8 at 50 req/s both make 400 predictions/s."""
    results.cell(rate=None, concurrency=1, batch=4, latency_ms=2.0)
    results.cell(rate=None, concurrency=1, batch=8, requests=evenly(500, 5.0), window_s=10.0)
    (sentence,) = build_model(results.root).batch_sweep_sentences()
    assert "most predictions/s 400 [400–400]" in sentence
    assert "indistinguishable here from batch" in sentence
    (best,) = summary_document(build_model(results.root)).batch_sweep_best
    assert (best.predictions_per_s.value, len(best.indistinguishable_from_batches)) == (400.0, 1)
