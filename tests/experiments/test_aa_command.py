"""`inferload aa MATRIX`: the matrix with its lines twinned as arms a and b, overrides validated again,
and bad input refused with what to fix (before anything runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from inferload.cells import expand_cells, select_cells
from inferload.cli import UsageError
from inferload.commands import aa
from inferload.experiments import ExperimentError, load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_the_arms_and_the_overrides_make_a_short_check_of_protocols_yaml() -> None:
    experiment = aa.with_arms(load_experiment(EXPERIMENTS / "protocols.yaml"), lines="*grpc*", repetitions=3,
                              rates="40,160", duration_s=10)
    cells = select_cells(expand_cells(experiment), "*grpc*").cells
    # 3 servers x gRPC x 2 rates x 3 repetitions, each twice (arm a: the line itself, arm b its twin)
    assert len(cells) == 36 and {cell.arm for cell in cells} == {"a", "b"}
    assert experiment.load.rates == (40.0, 160.0) and experiment.duration_s == 10
    assert experiment.time_budget_min is None  # the matrix's budget was for one arm


@pytest.mark.parametrize(("matrix", "overrides", "message"), [
    ("demo.yaml", {"rates": "40"}, "this matrix searches its rates"),
    ("protocols.yaml", {"rates": "40,fast"}, "give numbers separated by commas"),
    ("protocols.yaml", {"repetitions": 0}, "repetitions"),
])
def test_bad_overrides_name_what_to_fix(matrix: str, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        aa.with_arms(load_experiment(EXPERIMENTS / matrix), lines="*", **overrides)  # type: ignore[arg-type]


def test_a_line_pattern_that_matches_nothing_is_refused_before_any_run() -> None:
    parser = argparse.ArgumentParser()
    aa.register(parser.add_subparsers())
    args = parser.parse_args(["aa", str(EXPERIMENTS / "smoke.yaml"), "--lines", "mlserver-*"])
    with pytest.raises(UsageError, match="matches no line"):
        aa.run_aa(args)
