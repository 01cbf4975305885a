"""Max rates under the SLO compared on pairs: each repetition's two maxima, measured in interleaved rounds;
and the A/A figure of the max rate from two arms of one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder

from analysis import read_results
from analysis.aa import max_rate_mdd, mdd_sentence, mdd_table
from analysis.paired import PairedComparison, compare_max_rates
from analysis.report_model import build_model
from analysis.summary import summary_document

RATES = (40, 80, 160)


def sweep(results: ResultsBuilder, server: str, met_up_to: float, repetition: int, *,
          rounds: bool = True, arm: str | None = None) -> None:
    """One repetition of one line's sweep: 10 ms up to `met_up_to`, 400 ms (a miss) above it."""
    for k, rate in enumerate(RATES):
        latency = 10.0 if rate <= met_up_to else 400.0
        results.cell(server=server, rate=rate, latency_ms=latency, repetition=repetition,
                     round_index=(3 * repetition + k) if rounds else None, arm=arm)


def line_cells(root: Path, server: str) -> list:  # type: ignore[type-arg]
    return [c for c in read_results(root).cells if c.key.server == server]


def compare(root: Path, **options: object) -> PairedComparison:
    """tfserving's line against torchserve's (ratio = tfserving / torchserve)."""
    return compare_max_rates(line_cells(root, "tfserving"), line_cells(root, "torchserve"), **options)  # type: ignore[arg-type]


def test_max_rates_paired_by_repetition_beyond_the_a_a_figure(tmp_path: Path) -> None:
    """tfserving meets up to 160/s, torchserve up to 80/s, in each of 3 repetitions run in rounds:
    three pairs (160, 80), ratio 2.00x with no spread, beyond a 10 % A/A figure: tfserving surely
    sustains more ("b lower": the other line is lower)."""
    results = ResultsBuilder(tmp_path / "run")
    for repetition in range(3):
        sweep(results, "tfserving", 160, repetition)
        sweep(results, "torchserve", 80, repetition)
    comparison = compare(results.root, mdd=0.10)
    assert [(p.a, p.b) for p in comparison.pairs] == [(160.0, 80.0)] * 3
    assert comparison.ratio == pytest.approx(2.0) and comparison.verdict == "b lower"


def test_one_repetition_is_here_not_surely(tmp_path: Path) -> None:
    results = ResultsBuilder(tmp_path / "run")
    sweep(results, "tfserving", 160, 0)
    sweep(results, "torchserve", 40, 0)
    comparison = compare(results.root, mdd=0.10)
    assert comparison.verdict == "b lower here" and comparison.low is None
    assert "not 'surely'" in comparison.why


def test_a_line_that_met_the_slo_nowhere_is_lower_here_without_a_ratio(tmp_path: Path) -> None:
    """torchserve misses at every rate (400 ms at 40/s: surely, its lower bound is far above 100 ms)
    while tfserving meets up to 80/s in the same rounds: torchserve's true max is below 40, tfserving's
    at least 80. No ratio (one line has no max rate), and "here" only, even over 3 repetitions."""
    results = ResultsBuilder(tmp_path / "run")
    for repetition in range(3):
        sweep(results, "tfserving", 80, repetition)
        sweep(results, "torchserve", 0, repetition)
    comparison = compare(results.root, mdd=0.10)
    assert comparison.verdict == "b lower here" and comparison.ratio is None and comparison.pairs == ()
    assert "met the SLO at no rate and surely missed it at 40/s" in comparison.why
    assert "lower here than" in comparison.describe()
    # the other way round, the same evidence reads "a lower here"
    reverse = compare_max_rates(line_cells(results.root, "torchserve"), line_cells(results.root, "tfserving"))
    assert reverse.verdict == "a lower here"


def test_two_lines_that_met_the_slo_nowhere_are_indistinguishable_here(tmp_path: Path) -> None:
    """Both lines surely missed at every rate: neither has a max rate, so nothing orders them."""
    results = ResultsBuilder(tmp_path / "run")
    sweep(results, "tfserving", 0, 0)
    sweep(results, "torchserve", 0, 0)
    assert compare(results.root).verdict == "indistinguishable here"


def test_brackets_measured_apart_are_no_pair(tmp_path: Path) -> None:
    """The same sweeps without rounds (each line run on its own, minutes apart): no pair at all."""
    results = ResultsBuilder(tmp_path / "run")
    for repetition in range(3):
        sweep(results, "tfserving", 160, repetition, rounds=False)
        sweep(results, "torchserve", 80, repetition, rounds=False)
    comparison = compare(results.root)
    assert comparison.ratio is None and comparison.verdict == "indistinguishable here"
    assert "measured apart" in comparison.why


def test_a_flagged_repetition_is_left_out(tmp_path: Path) -> None:
    results = ResultsBuilder(tmp_path / "run")
    for repetition in range(3):
        sweep(results, "tfserving", 160, repetition)
        sweep(results, "torchserve", 80, repetition)
    flagged = frozenset({"torchserve-grpc-b1-default-r80-rep1"})
    comparison = compare(results.root, flagged=flagged)
    assert [p.repetition for p in comparison.pairs] == [0, 2] and comparison.excluded == 1


def test_the_max_rate_a_a_figure_comes_from_the_arms_per_repetition(tmp_path: Path) -> None:
    """Arms a and b of one line, 3 repetitions: maxima (160, 160), (160, 80), (160, 160): log ratios
    0, -ln 2, 0: mean -0.231, s 0.400, t(2) 4.303: exp(0.231 + 4.303 x 0.400 x sqrt(4/3)) - 1 =
    exp(2.219) - 1 = 8.2 (the arms once differed by a whole factor of 2, and three pairs say little:
    any max-rate difference below that is indistinguishable here)."""
    results = ResultsBuilder(tmp_path / "run")
    for repetition, b_max in enumerate((160, 80, 160)):
        sweep(results, "tfserving", 160, repetition, arm="a")
        sweep(results, "tfserving", b_max, repetition, arm="b")
    experiment = read_results(results.root)
    figure = max_rate_mdd(experiment.cells)
    assert figure.pairs == 3 and figure.mdd == pytest.approx(8.2, abs=0.05)
    assert figure.largest == pytest.approx(0.5)
    table = mdd_table(experiment.runs, experiment.cells)
    assert [m.metric for m in table][-1] == "max rate under the SLO"
    assert "(max rate under the SLO)" in mdd_sentence(table)


def test_the_report_calls_the_best_line_ahead_only_on_its_pairs(tmp_path: Path) -> None:
    """The report's best line and summary.json's `paired`: with 3 repetitions in rounds (160 vs 80 each
    time) tfserving surely sustains more; the same sweeps run without rounds show the same brackets but
    leave the lines indistinguishable here."""
    paired_run = ResultsBuilder(tmp_path / "paired")
    apart_run = ResultsBuilder(tmp_path / "apart")
    for repetition in range(3):
        for results, rounds in ((paired_run, True), (apart_run, False)):
            sweep(results, "tfserving", 160, repetition, rounds=rounds)
            sweep(results, "torchserve", 80, repetition, rounds=rounds)
    model = build_model(paired_run.root)
    best = model.verdict_lines()[-1]
    assert best.endswith("surely sustains more than every other line (paired repetitions)")
    assert [(c.verdict, len(c.pairs)) for c in model.paired] == [("b lower", 3)]
    entry = summary_document(model).paired[0]
    assert (entry["verdict"], entry["pairs"], entry["ratio"]) == ("b lower", 3, pytest.approx(2.0))
    apart = build_model(apart_run.root)
    assert "indistinguishable here from torchserve" in apart.verdict_lines()[-1]
    assert "measured apart" in apart.paired[0].why


def test_a_line_ahead_in_one_repetition_is_ahead_here_not_indistinguishable(tmp_path: Path) -> None:
    """In the same rounds tfserving meets up to 80/s and torchserve surely misses at every rate: torchserve
    is lower "here" (no max rate, so no ratio and no "surely"). The best line's sentence and summary.json
    say so, rather than calling the two lines indistinguishable."""
    results = ResultsBuilder(tmp_path / "run")
    for repetition in range(2):
        sweep(results, "tfserving", 80, repetition)
        sweep(results, "torchserve", 0, repetition)
    model = build_model(results.root)
    assert [c.verdict for c in model.paired] == ["b lower here"]
    best = model.verdict_lines()[-1]
    assert "sustains more here than torchserve" in best and "(not surely)" in best
    assert "indistinguishable" not in best and "surely sustains" not in best
    entry = summary_document(model).best_configuration
    assert (entry.ahead_here_of, entry.beats, entry.indistinguishable_from) == (
        [model.best.ahead_here_of[0].label()], [], [])
