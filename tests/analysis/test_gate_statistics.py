"""The regression gate's statistics on their own: machine, pace, and per-cell distribution verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.errors import ResultsError
from analysis.gate import (
    BETTER,
    OVERLOADED,
    SAME,
    UNKNOWN,
    WORSE,
    Pace,
    check_same_machine,
    check_same_pace,
    judge_cells,
)


def slices(median_ms: float, seed: int, n: int = 10, spread: float = 0.03) -> list[float]:
    return list(np.random.default_rng(seed).normal(math.log(median_ms), spread, n))


def test_another_machine_is_refused_naming_both() -> None:
    before = {"cpu_model": "Intel Xeon Platinum 8375C", "cpu_count_logical": 2}
    after = {"cpu_model": "AMD EPYC 7R13", "cpu_count_logical": 2}
    with pytest.raises(ResultsError) as refused:
        check_same_machine(before, after, "base", "new")
    assert "Intel Xeon Platinum 8375C x 2 CPUs" in str(refused.value)
    assert "AMD EPYC 7R13 x 2 CPUs" in str(refused.value)
    check_same_machine(before, dict(before), "base", "new")  # the same machine passes
    check_same_machine(None, after, "base", "new")  # unrecorded: nothing to refuse on


def test_a_drifted_pace_is_refused_with_both_figures() -> None:
    """The issue's demo pair: the floor moved from 2.57 to 3.54 ms (+38 %), beyond the 10 % tolerance."""
    pace = Pace(2.57, 3.54, 1)
    assert pace.drifted and pace.ratio == pytest.approx(3.54 / 2.57)
    with pytest.raises(ResultsError) as refused:
        check_same_pace(pace, "results/demo", "results/demo-aa")
    message = str(refused.value)
    assert "2.57 ms before and 3.54 ms after (+38%; tolerance ±10%)" in message
    assert "drifted" in message
    check_same_pace(Pace(2.57, 2.70, 1), "a", "b")  # +5 %: judged
    assert "unchecked" in Pace(None, 2.7, 1).describe() and not Pace(None, 2.7, 1).drifted


def test_a_predict_too_short_to_time_leaves_the_pace_unchecked() -> None:
    """The small model's predict, ~0.015 ms, is mostly call overhead and timer noise: three runs a
    minute apart measured 0.012, 0.018 and 0.016 ms. Such a pair is not taken as drift, and says so."""
    pace = Pace(0.0124, 0.0184, 1)
    assert not pace.timeable and not pace.drifted
    assert pace.describe() == (
        "machine pace not compared: the model's predict (batch 1, no load) took 0.012 ms before and 0.018 ms "
        "after, too short to time the machine (under 0.1 ms a predict is mostly call overhead and timer "
        "noise), so drift between the runs is unchecked")
    check_same_pace(pace, "a", "b")
    assert Pace(0.10, 0.12, 1).drifted  # from 0.1 ms on, the tolerance applies


def test_a_uniform_slowdown_is_worse_and_noise_is_not() -> None:
    """Three cells: one 30 % slower, one unchanged, one 30 % faster; a fourth missing on a side."""
    cells = [
        ("slower", slices(10, 1), slices(13, 2)),
        ("same", slices(10, 3), slices(10, 4)),
        ("faster", slices(13, 5), slices(10, 6)),
        ("missing", slices(10, 7), None),
    ]
    verdicts = {c.label: c for c in judge_cells(cells, threshold=0.10)}
    assert [verdicts[k].verdict for k in ("slower", "same", "faster", "missing")] == [WORSE, SAME, BETTER,
                                                                                        UNKNOWN]
    slower = verdicts["slower"]
    assert slower.shift is not None and slower.shift.ratio == pytest.approx(1.3, abs=0.05)
    assert slower.adjusted_p is not None and slower.adjusted_p <= 3 * 2 / math.comb(20, 10)  # Holm over 3
    assert slower.describe().startswith("slower: worse, latency x1.2")


def test_a_significant_shift_within_the_threshold_is_not_a_regression() -> None:
    """A tight 5 % slowdown is beyond the slices' noise but within a 10 % threshold (the A/A figure or
    the drift tolerance): indistinguishable here."""
    before, after = slices(10, 1, spread=0.005), slices(10.5, 2, spread=0.005)
    (cell,) = judge_cells([("cell", before, after)], threshold=0.10)
    assert cell.shift is not None and cell.shift.p_value < 0.001
    assert cell.verdict == SAME


def test_a_cell_past_the_slo_in_both_runs_is_listed_not_tested() -> None:
    """An overloaded queue's latency grows with the run: x10 between two runs is not a regression of
    the server. A cell that only the after run missed is still tested, and no Holm share is spent on
    the overloaded one."""
    cells = [("overloaded", slices(300, 1), slices(3000, 2)), ("slower", slices(10, 3), slices(13, 4))]
    verdicts = {c.label: c for c in judge_cells(cells, threshold=0.10, overloaded=frozenset({"overloaded"}))}
    assert (verdicts["overloaded"].verdict, verdicts["overloaded"].shift) == (OVERLOADED, None)
    assert verdicts["overloaded"].describe() == f"overloaded: {OVERLOADED}"
    assert verdicts["slower"].verdict == WORSE
    slower = verdicts["slower"]
    assert slower.adjusted_p is not None and slower.adjusted_p <= 2 / math.comb(20, 10)
