"""The matrix's `early_stop`: validated when read (naming the field and its line), carried into each
cell's load settings (search steps included), and counted at its cap in the dry-run estimate."""

from __future__ import annotations

import pytest

from inferload.cells import expand_cells
from inferload.experiments import ExperimentError, parse_experiment
from inferload.search import estimated_seconds
from inferload.stages import load_settings_for
from loadtest import LoadSettings
from serving.ports import Ports

MATRIX = """\
name: t
model: {classes: 4, features: 8, seed: 0}
servers: [torchserve]
protocols: [grpc]
load:
  mode: open
  rates: [50]
batch_sizes: [1]
warmup_s: 1
duration_s: 20
slo: {percentile: 99, latency_ms: 100}
early_stop:
  interval_within: 0.1
  max_duration_s: 120
"""
RULE = "early_stop:\n  interval_within: 0.1\n  max_duration_s: 120\n"
PORTS = Ports()


def matrix(old: str = "", new: str = "") -> str:
    assert old in MATRIX, old
    return MATRIX.replace(old, new)


@pytest.mark.parametrize(
    ("problem", "text", "where", "words"),
    [
        ("cap below the minimum", matrix("max_duration_s: 120", "max_duration_s: 10"),
         "bad.yaml:14: early_stop.max_duration_s:", "below duration_s 20"),
        ("fraction zero", matrix("interval_within: 0.1", "interval_within: 0"),
         "bad.yaml:13: early_stop.interval_within:", "greater than 0"),
        ("fraction one", matrix("interval_within: 0.1", "interval_within: 1"),
         "bad.yaml:13: early_stop.interval_within:", "less than 1"),
        ("fraction negative", matrix("interval_within: 0.1", "interval_within: -0.2"),
         "bad.yaml:13: early_stop.interval_within:", "greater than 0"),
        ("cap missing", matrix("  max_duration_s: 120\n"), "bad.yaml:12: early_stop.max_duration_s:",
         "missing"),
        ("misspelt field", matrix("interval_within", "interval_whithin"),
         "bad.yaml:13: early_stop.interval_whithin:", "unknown field"),
        ("several load processes", MATRIX + "processes: 2\n", "bad.yaml:12: early_stop:",
         "set `processes: 1`"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value and ":" not in value else "",
)
def test_a_bad_early_stop_is_refused_naming_the_field(problem: str, text: str, where: str,
                                                      words: str) -> None:
    with pytest.raises(ExperimentError) as refused:
        parse_experiment(text, source="bad.yaml")
    message = str(refused.value)
    assert where in message, message
    assert words in message, message


def test_without_early_stop_every_cell_runs_exactly_duration_s() -> None:
    experiment = parse_experiment(matrix(RULE))
    (cell,) = expand_cells(experiment).cells
    fields = load_settings_for(cell, experiment, PORTS, server_kind=None)
    assert "early_stop" not in fields
    assert experiment.longest_duration_s == 20


def test_each_cell_gets_the_rule_with_the_slo_percentile() -> None:
    experiment = parse_experiment(matrix("percentile: 99,", "percentile: 95,"))
    (cell,) = expand_cells(experiment).cells
    settings = LoadSettings(**load_settings_for(cell, experiment, PORTS, server_kind=None))
    assert settings.duration_s == 20
    assert settings.early_stop is not None
    assert (settings.early_stop.percentile, settings.early_stop.interval_within,
            settings.early_stop.max_duration_s) == (95.0, 0.1, 120.0)
    assert settings.resolved()["early_stop"] == settings.early_stop.model_dump()


def test_a_search_step_longer_than_the_cap_keeps_its_own_length() -> None:
    """A step at 2 req/s is long (a p99 needs 1.2 x 795 / 2 = 477 s of it): a 221 s step keeps its
    length, the cap cannot cut it."""
    experiment = parse_experiment(matrix("  rates: [50]\n", "  search: {start: 2, max: 64}\n"))
    (line,) = expand_cells(experiment).cells
    step = line.at_rate(2.0, 221.0)
    settings = LoadSettings(**load_settings_for(step, experiment, PORTS, server_kind=None))
    assert settings.duration_s == 221.0
    assert settings.early_stop is not None and settings.early_stop.max_duration_s == 221.0


def test_the_estimate_counts_every_cell_at_its_cap() -> None:
    """Capped at 120 s, a cell is planned at 120 s, not its 20 s duration; everything else (calibration,
    warm-up until stable, overhead) is the same with and without the rule."""
    with_rule = parse_experiment(MATRIX)
    without = parse_experiment(matrix(RULE))
    capped = expand_cells(with_rule).estimated_seconds(with_rule, server_start_s=0, cell_overhead_s=4.0)
    uncapped = expand_cells(without).estimated_seconds(without, server_start_s=0, cell_overhead_s=4.0)
    assert capped - uncapped == 120 - 20
    assert uncapped >= 1 + 20 + 4.0


def test_the_search_estimate_counts_every_step_at_its_cap_too() -> None:
    searching = matrix("  rates: [50]\n", "  search: {start: 100, max: 200, bisect_steps: 0}\n")
    capped = parse_experiment(searching)
    uncapped = parse_experiment(searching.replace(RULE, ""))
    # each step at 100 and 200 req/s needs only max(20, 1.2 x 795 / rate) = 20 s without the rule
    assert estimated_seconds(uncapped, 1, cell_overhead_s=0) == 2 * (1 + 20)
    assert estimated_seconds(capped, 1, cell_overhead_s=0) == 2 * (1 + 120)


def test_the_load_settings_refuse_the_rule_with_several_processes_or_a_short_cap() -> None:
    base = {"server": "torchserve", "protocol": "grpc", "rate": 10.0, "duration_s": 20.0}
    with pytest.raises(ValueError, match="set processes 1"):
        LoadSettings(**base, processes=2, early_stop={"interval_within": 0.1, "max_duration_s": 60})
    with pytest.raises(ValueError, match="early_stop.max_duration_s 10 is below duration_s 20"):
        LoadSettings(**base, early_stop={"interval_within": 0.1, "max_duration_s": 10})
