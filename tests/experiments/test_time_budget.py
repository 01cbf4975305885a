"""A matrix that asks for more repetitions or samples than its time budget allows is refused when read."""

from __future__ import annotations

import pytest

from inferload.cells import expand_cells
from inferload.experiments import ExperimentError, parse_experiment

MATRIX = """\
name: t
model: {classes: 64, features: 1024, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, rest-binary, grpc]
load: {mode: open, rates: [20, 40]}
batch_sizes: [1]
warmup_s: 2
duration_s: 20
repetitions: 3
time_budget_min: BUDGET
"""


def _estimate_min(text: str) -> float:
    experiment = parse_experiment(text.replace("time_budget_min: BUDGET\n", ""))
    return expand_cells(experiment).estimated_seconds(experiment) / 60


def test_a_matrix_within_its_budget_is_accepted() -> None:
    estimate = _estimate_min(MATRIX)
    assert parse_experiment(MATRIX.replace("BUDGET", f"{estimate + 0.5:.1f}")).time_budget_min > estimate


def test_more_repetitions_than_the_budget_allows_are_refused_with_the_estimate() -> None:
    estimate = _estimate_min(MATRIX)  # 36 cells of 26 s + 2 server starts: ~16 min
    with pytest.raises(ExperimentError) as refused:
        parse_experiment(MATRIX.replace("BUDGET", "10"))
    message = str(refused.value)
    assert message.startswith("<experiment>:10: time_budget_min:")
    assert f"~{estimate:.1f} min" in message and "36 cells, 3 repetition(s)" in message
    assert "lower repetitions" in message


def test_the_early_stop_cap_counts_against_the_budget() -> None:
    one_repetition = MATRIX.replace("repetitions: 3", "repetitions: 1").replace("BUDGET", "10")
    assert parse_experiment(one_repetition).time_budget_min == 10  # 12 cells of 26 s fit in 10 min
    capped = one_repetition + "early_stop: {interval_within: 0.1, max_duration_s: 120}\n"
    with pytest.raises(ExperimentError, match=r"early_stop.max_duration_s 120 s counted per cell"):
        parse_experiment(capped)  # 12 cells of up to 126 s do not


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ExperimentError, match="time_budget_min"):
        parse_experiment(MATRIX.replace("BUDGET", "0"))
