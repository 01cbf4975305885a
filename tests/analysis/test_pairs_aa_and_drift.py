"""The smallest versions of the A/A figure (analysis/aa.py), the paired comparison (analysis/paired.py)
and the drift flags (analysis/drift.py), on synthetic cells with hand-worked numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from synthetic_results import ResultsBuilder

from analysis import read_results
from analysis.aa import SLO_LATENCY, aa_pairs, judged_pairs, mdd_sentence, mdd_table
from analysis.drift import machine_flags
from analysis.paired import compare_lines

S = 1_000_000_000


def machine(*, calibration: tuple[int, float] | None = None, probe: float | None = None,
            other_cpu_cores: float = 0.0) -> dict[str, Any]:
    return {"window_ns": [S, 2 * S], "cpu_count": 2, "steal_share": 0.0, "load_average_1m": 1.0,
            "other_cpu_cores": other_cpu_cores,
            "calibration": None if calibration is None else {
                "index": calibration[0], "label": f"after round {calibration[0]}", "seconds_away": 1.0,
                "batch": 1, "predict_ms": calibration[1], "bandwidth_gb_s": 10.0},
            "probe": None if probe is None else {"batch": 1, "median_ms": probe, "p90_ms": probe, "n": 10}}


def test_the_aa_figure_is_a_prediction_bound_from_the_arms_log_ratios(tmp_path: Path) -> None:
    """Arms a and b at 10, 20, 40 req/s with latencies (10, 11), (20, 18), (40, 44) ms: log ratios
    0.0953, -0.1054, 0.0953, mean 0.0284, s = 0.1159; t(0.975, 2) = 4.303; the bound is
    exp(|0.0284| + 4.303 x 0.1159 x sqrt(1 + 1/3)) - 1 = exp(0.0284 + 0.5758) - 1 = 0.829: differences
    below ±83 % are indistinguishable."""
    results = ResultsBuilder(tmp_path / "aa")
    for k, (rate, a, b) in enumerate([(10, 10.0, 11.0), (20, 20.0, 18.0), (40, 40.0, 44.0)]):
        results.cell(rate=rate, latency_ms=a, round_index=k, arm="a")
        results.cell(rate=rate, latency_ms=b, round_index=k, arm="b")
    runs = read_results(tmp_path / "aa").runs
    assert len(aa_pairs(runs)) == 3
    p50 = next(m for m in mdd_table(runs) if m.metric == "p50 latency")
    assert p50.pairs == 3 and p50.mdd == pytest.approx(0.829, abs=0.002)
    assert p50.largest == pytest.approx(0.1)
    assert "below ±83%" in p50.describe()
    # both arms sent the same schedule: their throughputs agree exactly, which is no figure, not ±0 %
    throughput = next(m for m in mdd_table(runs) if m.metric == "throughput")
    assert throughput.identical and throughput.mdd is None
    assert "identical in all 3 pairs" in throughput.describe()
    assert "(throughput)" not in mdd_sentence(mdd_table(runs))


def test_the_aa_figure_leaves_out_overloaded_levels_and_flagged_runs(tmp_path: Path) -> None:
    """The three pairs above, and two more: at 160/s both arms past the SLO (400 and 1,600 ms: an
    overloaded queue's latency grows with the run, and the gate compares no such cell), and at 80/s a
    pair whose arm b ran while other processes took a whole core (flagged). Both are left out: the figure
    stays the ±83 % of the three pairs a comparison would judge, not the ±hundreds the overload gives."""
    results = ResultsBuilder(tmp_path / "aa")
    rows = [(10, 10.0, 11.0, 0.0), (20, 20.0, 18.0, 0.0), (40, 40.0, 44.0, 0.0), (80, 50.0, 90.0, 1.0),
            (160, 400.0, 1600.0, 0.0)]
    for k, (rate, a, b, other) in enumerate(rows):
        results.cell(rate=rate, latency_ms=a, round_index=k, arm="a", machine=machine())
        results.cell(rate=rate, latency_ms=b, round_index=k, arm="b", machine=machine(other_cpu_cores=other))
    experiment = read_results(tmp_path / "aa")
    assert len(aa_pairs(experiment.runs)) == 5
    assert [p.level for p in judged_pairs(experiment.runs, experiment.cells)] == ["10 req/s", "20 req/s",
                                                                                  "40 req/s"]
    p50 = next(m for m in mdd_table(experiment.runs, experiment.cells) if m.metric == "p50 latency")
    assert p50.pairs == 3 and p50.mdd == pytest.approx(0.829, abs=0.002)


def test_the_aa_table_has_the_slo_percentiles_own_row_when_it_is_neither_p50_nor_p99(tmp_path: Path) -> None:
    """The demo judges p90: its paired verdicts need the A/A figure of p90 itself. Same arms as above,
    so the same figure; with a p99 SLO that row would repeat "p99 latency" and is left out."""
    for percentile, has_row in ((90.0, True), (99.0, False)):
        results = ResultsBuilder(tmp_path / f"aa{percentile:g}", slo_percentile=percentile)
        for k, (rate, a, b) in enumerate([(10, 10.0, 11.0), (20, 20.0, 18.0), (40, 40.0, 44.0)]):
            results.cell(rate=rate, latency_ms=a, round_index=k, arm="a")
            results.cell(rate=rate, latency_ms=b, round_index=k, arm="b")
        table = mdd_table(read_results(tmp_path / f"aa{percentile:g}").runs)
        row = next((m for m in table if m.metric == SLO_LATENCY), None)
        assert (row is not None) is has_row
        if row is not None:
            assert row.pairs == 3 and row.mdd == pytest.approx(0.829, abs=0.002)


def build_lines(root: Path, *, repetitions: bool, flagged_round: int | None = None) -> list[Any]:
    """Line A 10 ms, line B 20 ms in rounds 0-2: at 40 req/s in repetitions 0-2, or (one repetition, as
    a search's rounds) at 40, 80 and 160 req/s."""
    results = ResultsBuilder(root)
    for k in range(3):
        slow = 1.0 if k != flagged_round else 2.0
        rate, repetition = (40, k) if repetitions else (40 * 2**k, 0)
        for server, latency in (("tfserving", 10.0), ("torchserve", 20.0)):
            results.cell(server=server, rate=rate, latency_ms=latency * slow, round_index=k,
                         repetition=repetition, machine=machine(probe=3.0 * slow))
    return list(read_results(root).runs)


@pytest.mark.parametrize(("repetitions", "verdict"), [(True, "a lower"), (False, "a lower here")])
def test_a_line_is_surely_lower_only_over_repetitions(tmp_path: Path, repetitions: bool,
                                                      verdict: str) -> None:
    runs = build_lines(tmp_path / "lines", repetitions=repetitions)
    a = [r for r in runs if r.key.server == "tfserving"]
    b = [r for r in runs if r.key.server == "torchserve"]
    comparison = compare_lines(a, b, metric="p50 latency", mdd=0.2)
    assert comparison.ratio == pytest.approx(0.5)
    assert comparison.verdict == verdict, comparison.why
    assert ("surely lower" in comparison.describe()) == repetitions
    within = compare_lines(a, b, metric="p50 latency", mdd=1.5)  # |ln 0.5| = 0.69 < ln 2.5 = 0.92
    assert within.verdict == "indistinguishable here"


def test_a_cell_whose_machine_was_off_is_flagged_and_its_pair_left_out(tmp_path: Path) -> None:
    runs = build_lines(tmp_path / "lines", repetitions=True, flagged_round=1)
    flags = machine_flags(runs)
    # probes 3 3 6 ms for each line at 40 req/s: the median 3, and 6 is 100 % slower than it
    assert {run.round for run in runs if run.cell_id in flags} == {1}
    assert all("probe" in reason for reasons in flags.values() for reason in reasons)
    a = [r for r in runs if r.key.server == "tfserving"]
    b = [r for r in runs if r.key.server == "torchserve"]
    judged = compare_lines(a, b, metric="p50 latency", flagged=set(flags))
    assert judged.excluded == 1 and len(judged.pairs) == 2


def test_a_calibration_off_the_runs_median_flags_its_cells(tmp_path: Path) -> None:
    """Calibrations 3.0, 3.1, 4.5 ms: median 3.1; 4.5 is 45 % slower (over the 25 % tolerance)."""
    results = ResultsBuilder(tmp_path / "calibrated")
    for k, predict_ms in enumerate([3.0, 3.1, 4.5]):
        results.cell(rate=10 * (k + 1), round_index=k, machine=machine(calibration=(k, predict_ms)))
    runs = read_results(tmp_path / "calibrated").runs
    flags = machine_flags(runs)
    assert [run.key.rate for run in runs if run.cell_id in flags] == [30.0]
    (reason,) = next(iter(flags.values()))
    assert "45% slower than the run's median" in reason
    assert math.isclose(4.5 / 3.1 - 1, 0.4516, abs_tol=1e-3)


def test_a_cell_beside_other_work_is_flagged_even_when_its_probe_did_not_notice(tmp_path: Path) -> None:
    """Other processes took 0.9 cores in one cell's window (limit 0.25) and 0.1 in another's; every probe
    read 3 ms (a 15 µs predict can finish inside one scheduler slice beside a hog)."""
    results = ResultsBuilder(tmp_path / "beside")
    for k, other in enumerate([0.1, 0.9, 0.0]):
        results.cell(rate=40, round_index=k, repetition=k, machine=machine(probe=3.0, other_cpu_cores=other))
    runs = read_results(tmp_path / "beside").runs
    flags = machine_flags(runs)
    assert [run.round for run in runs if run.cell_id in flags] == [1]
    assert next(iter(flags.values())) == ("other processes took 0.90 cores in its window",)
