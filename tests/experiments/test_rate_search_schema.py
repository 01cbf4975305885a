"""`load.search` in a matrix: exactly one of `rates` and `search`, open loop only, sane bounds; every
error names the field and its line."""

from __future__ import annotations

import pytest

from inferload.experiments import ExperimentError, parse_experiment

HEAD = """\
name: s
model: {classes: 4, features: 8, seed: 0}
servers: [torchserve]
protocols: [grpc]
batch_sizes: [1]
warmup_s: 0
duration_s: 1
load:
"""


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ("  mode: open\n  rates: [10]\n  search: {start: 10, max: 80}\n",
         "s.yaml:10: load.rates: give exactly one of `rates`"),
        ("  mode: closed\n  search: {start: 10, max: 80}\n", "s.yaml:10: load.search: the max-rate search"),
        ("  mode: open\n  search: {start: 10, max: 5}\n",
         "s.yaml:10: load.search.max: max 5 is below start 10"),
        ("  mode: open\n  search:\n    start: 10\n    max: 80\n    factor: 1\n",
         "s.yaml:13: load.search.factor: Input should be greater than 1"),
        ("  mode: open\n  search: {start: 10, max: 80, min: 20}\n",
         "load.search.min: min 20 is above start 10"),
        ("  mode: open\n  search: {start: 10}\n", "s.yaml:10: load.search.max: required field is missing"),
        ("  mode: open\n  search: {start: 10, max: 80, steps: 3}\n", "load.search.steps: unknown field"),
        ("  mode: open\n", "or `search: {start: 10, max: 640}`"),
        ("  mode: open\n  search: {start: 10, max: 80, inflation: 0.5}\n",
         "s.yaml:10: load.search.inflation: Input should be greater than or equal to 1"),
    ],
)
def test_bad_search_sections_are_refused_naming_field_and_line(load: str, expected: str) -> None:
    with pytest.raises(ExperimentError) as error:
        parse_experiment(HEAD + load, source="s.yaml")
    assert expected in str(error.value)


def test_a_search_section_is_read_with_its_defaults() -> None:
    experiment = parse_experiment(HEAD + "  mode: open\n  search: {start: 20, max: 640}\n")
    search = experiment.load.search
    assert (search.start, search.factor, search.max, search.bisect_steps, search.floor) == (20, 2, 640, 3, 5)
    assert search.inflation == 1.0  # steps sized for independent requests unless the matrix plans for more
    assert experiment.load.levels == (20,)


def test_refine_is_refused_on_a_search_matrix() -> None:
    from inferload.search import check_refinable

    with pytest.raises(ValueError, match="bisect_steps"):
        check_refinable(parse_experiment(HEAD + "  mode: open\n  search: {start: 20, max: 640}\n"))
