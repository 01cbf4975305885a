"""`inferload run --refine N`: bisect each sweep line's max rate under the SLO between the last rate
that met it and the first usable rate that missed it, one extra cell per line and step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from inferload.cells import expand_cells
from inferload.experiments import parse_experiment
from inferload.search import Bracket, brackets, refine, round_rate, with_rate

MATRIX = """
name: refine
model: {classes: 64, features: 1024, seed: 0}
servers: [torchserve]
protocols: [grpc]
load: {mode: open, rates: [20, 40, 80, 160]}
batch_sizes: [1]
warmup_s: 1
duration_s: 3
repetitions: 1
seed: 0
slo: {percentile: 99, latency_ms: 100}
"""


def verdict(low: float | None, high: float | None, protocol: str = "grpc") -> SimpleNamespace:
    group = SimpleNamespace(server="torchserve", protocol=protocol, server_config_name="default", batch=1)
    return SimpleNamespace(group=group, max_rate_under_slo=low, first_miss_rate=high)


class SimulatedServer:
    """Meets the SLO up to `capacity` req/s; records which cells the bisection ran."""

    def __init__(self, capacity: float, measured: set[float]) -> None:
        self.capacity = capacity
        self.measured = set(measured)
        self.ran: list[str] = []

    def run_cells(self, experiment, cell_id: str) -> None:
        (cell,) = [c for c in expand_cells(experiment).cells if c.cell_id == cell_id]
        self.ran.append(cell_id)
        self.measured.add(cell.rate)

    def read_verdicts(self, _out: Path) -> list[SimpleNamespace]:
        met = [r for r in self.measured if r <= self.capacity]
        missed = [r for r in self.measured if r > self.capacity]
        return [verdict(max(met) if met else None, min(missed) if missed else None)]


@pytest.mark.parametrize(
    ("low", "high", "midpoint"),
    [(40, 80, 60), (80, 160, 120), (0, 5, 2.5), (5, 10, 7.5), (60, 70, 65)],
)
def test_the_midpoint_splits_the_bracket_in_rates_people_write(low, high, midpoint) -> None:
    assert Bracket("torchserve", "grpc", "default", 1, low, high).midpoint == midpoint


def test_lines_without_a_miss_or_with_a_narrow_bracket_are_left_alone() -> None:
    found = brackets([verdict(160, None), verdict(100, 104, "rest-json"), verdict(40, 80, "rest-binary")])
    assert [(b.protocol, b.low, b.high) for b in found] == [("rest-binary", 40, 80)]


def test_a_line_that_missed_at_its_lowest_rate_is_bisected_from_zero() -> None:
    (bracket,) = brackets([verdict(None, 5)])
    assert (bracket.low, bracket.midpoint) == (0.0, 2.5)


def test_the_extended_matrix_keeps_its_rates_sorted_and_adds_one_cell_per_line() -> None:
    experiment = parse_experiment(MATRIX, source="refine.yaml")
    extended = with_rate(experiment, 60.0)
    assert extended.load.rates == (20, 40, 60.0, 80, 160)
    assert len(expand_cells(extended).cells) == len(expand_cells(experiment).cells) + 1


def test_three_steps_narrow_a_factor_of_two_bracket_to_an_eighth(tmp_path) -> None:
    """True capacity 70 req/s, sweep 20/40/80/160: brackets [40,80) -> 60 met -> [60,80) -> 70 met
    -> [70,80) -> 75 missed: the max rate under the SLO is 70, known to within 5 req/s."""
    experiment = parse_experiment(MATRIX, source="refine.yaml")
    server = SimulatedServer(capacity=70, measured={20, 40, 80, 160})
    split = refine(experiment, tmp_path, steps=3, run_cells=server.run_cells,
                   read_verdicts=server.read_verdicts, note=lambda _: None)
    assert [b.midpoint for b in split] == [60, 70, 75]
    assert server.ran == [f"torchserve-grpc-b1-default-r{r}-rep0" for r in (60, 70, 75)]
    assert server.read_verdicts(tmp_path)[0].max_rate_under_slo == 70


def test_refinement_stops_when_nothing_is_left_to_split(tmp_path) -> None:
    experiment = parse_experiment(MATRIX, source="refine.yaml")
    server = SimulatedServer(capacity=1000, measured={20, 40, 80, 160})
    assert refine(experiment, tmp_path, steps=3, run_cells=server.run_cells,
                  read_verdicts=server.read_verdicts, note=lambda _: None) == []
    assert server.ran == []


def test_closed_loop_matrices_cannot_be_refined(tmp_path) -> None:
    closed = MATRIX.replace("{mode: open, rates: [20, 40, 80, 160]}", "{mode: closed, concurrencies: [1]}")
    experiment = parse_experiment(closed, source="refine.yaml")
    with pytest.raises(ValueError, match="open-loop"):
        refine(experiment, tmp_path, steps=1, run_cells=lambda *_: None, read_verdicts=lambda _: [])


def test_round_rate_keeps_small_rates_fractional() -> None:
    assert (round_rate(7.25), round_rate(59.6)) == (7.2, 60.0)
