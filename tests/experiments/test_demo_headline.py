"""`inferload demo`: the full-size matrix by default, `--smoke` for CI, and a closing headline that says
which server x protocol sustains the most under the SLO, by how much, and how sure (from the
analysis' own verdicts and brackets)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from analysis.paired import Pair, judge_pairs
from analysis.repetitions import GroupKey
from analysis.report_model import verdict_sentence
from analysis.verdicts import SweepVerdict, best_configuration
from inferload.commands import demo
from inferload.experiments import load_experiment


def line(server: str, protocol: str, rate: float | None, low: float | None,
         high: float | None) -> SweepVerdict:
    return SweepVerdict(
        group=GroupKey(server, protocol, "default", 1, "open"), max_rate_under_slo=rate,
        max_rate_note=None if rate else "the lowest usable rate, 10/s, already missed the SLO",
        p99_at_max_ms=None, throughput_at_max_rps=rate, predictions_at_max_per_s=rate, half_rate=None,
        p99_at_half_ms=None, p99_at_half_note=None, rates_measured=(), excluded=(),
        max_rate_low=low, max_rate_high=high, max_rate_method="bracketing rates")


Pairs = dict[str, list[tuple[float, float]]]


def headline(*verdicts: SweepVerdict, repetitions: int = 3, pairs: Pairs | None = None,
             mdd: float | None = None) -> list[str]:
    """The headline of these lines; `pairs`: per other line (protocol), the (winner, other) max rates of
    each repetition measured in interleaved rounds (absent: no paired repetitions)."""
    best = best_configuration(verdicts)
    paired = {}
    for v in verdicts:
        if v.group != best.group and pairs and v.group.protocol in pairs:
            values = [Pair(0.0, -1, k, a, b) for k, (a, b) in enumerate(pairs[v.group.protocol])]
            paired[v.group] = judge_pairs("winner", v.group.label(), "max rate under the SLO", values, 0, mdd)
    return demo.headline_lines(verdicts, best, slo="p99 latency <= 100 ms",
                               model=f"model 64 x 262,144, {repetitions} repetition(s)",
                               repetitions=repetitions, paired=paired)


def test_the_headline_names_the_line_with_the_highest_max_rate() -> None:
    lines = headline(line("tfserving", "grpc", 140, 120, 160), line("torchserve", "grpc", 120, 80, 160))
    assert lines[0] == "HEADLINE (model 64 x 262,144, 3 repetition(s); SLO p99 latency <= 100 ms)"
    assert lines[1] == ("  tfserving grpc has the highest max rate here: 140 req/s under the SLO (true max "
                        "in [120, 160))")


def test_lines_with_the_same_max_rate_share_the_top_of_the_headline() -> None:
    """Three lines met up to 80 req/s: the headline names all three rather than pick one."""
    lines = headline(line("tfserving", "grpc", 80, 80, None), line("triton", "grpc", 80, 80, None),
                     line("triton", "rest-binary", 80, 80, None), line("torchserve", "grpc", 40, 40, 80))
    assert lines[1] == ("  tfserving grpc, triton grpc and triton rest-binary share the highest max rate "
                        "here: 80 req/s under the SLO (true max in [80, ∞)); the others are compared with "
                        "tfserving grpc")


def test_brackets_alone_are_no_evidence() -> None:
    """Separated brackets measured apart (no paired repetitions): shown, but indistinguishable here."""
    lines = headline(line("tfserving", "grpc", 140, 120, 160), line("torchserve", "rest-json", 20, 20, 30))
    assert lines[2] == ("  vs torchserve rest-json (20 req/s, true max in [20, 30)): 7.00x; "
                        "indistinguishable here (no paired repetitions)")
    assert not any("surely" in text and "sustains more" in text for text in lines)


def test_pairs_over_repetitions_beyond_the_a_a_figure_say_surely_more() -> None:
    """Three repetitions, each with both lines in interleaved rounds: 160/80, 160/80, 120/80 -> log
    ratios ln 2, ln 2, ln 1.5: 1.82x [1.20, 2.75], wholly beyond a 10 % A/A figure."""
    lines = headline(line("tfserving", "grpc", 160, 120, 160), line("torchserve", "rest-json", 80, 80, 160),
                     pairs={"rest-json": [(160, 80), (160, 80), (120, 80)]}, mdd=0.10)
    assert lines[2].startswith("  vs torchserve rest-json (80 req/s, true max in [80, 160)): 2.00x; "
                               "tfserving grpc surely sustains more: 1.82x [1.20, 2.75] over 3 paired "
                               "repetition(s) (95 % interval over 3 pairs, beyond the A/A's ±10%)")


def test_pairs_that_disagree_are_indistinguishable() -> None:
    lines = headline(line("tfserving", "grpc", 160, 120, 160), line("torchserve", "grpc", 120, 80, 160),
                     pairs={"grpc": [(160, 120), (120, 160), (160, 160)]}, mdd=0.10)
    assert "; indistinguishable here: 1.00x [" in lines[2] and "reaches 1" in lines[2]


def test_one_repetition_is_never_surely() -> None:
    """One repetition's pair beyond the A/A figure: "more here", never "surely"."""
    lines = headline(line("tfserving", "grpc", 160, 160, 320), line("torchserve", "rest-json", 40, 40, 80),
                     pairs={"rest-json": [(160, 40)]}, mdd=0.10, repetitions=1)
    assert "more here: 4.00x over 1 paired repetition(s)" in lines[2]
    assert "one repetition: no between-run interval, so not 'surely'" in lines[2]
    assert not any("surely sustains" in text for text in lines)


def test_an_open_bracket_is_never_surely_beaten() -> None:
    lines = headline(line("tfserving", "grpc", 140, 120, 160), line("torchserve", "grpc", 80, 80, None))
    assert "true max in [80, ∞)" in lines[2] and "indistinguishable here" in lines[2]


def test_a_line_that_met_nothing_and_a_run_where_nothing_met() -> None:
    lines = headline(line("tfserving", "grpc", 140, 120, 160), line("tfserving", "rest-json", None, None, 10))
    assert lines[2].startswith("  vs tfserving rest-json: no rate met the SLO (the lowest usable rate")
    assert lines[2].endswith("; indistinguishable here (no paired repetitions)")
    nothing = headline(line("tfserving", "rest-json", None, None, 10))
    assert nothing[1] == "  no best server and protocol: no configuration met the SLO at any usable rate"


def test_lines_never_judged_are_not_said_to_miss() -> None:
    """Two lines whose every step had too few effective requests for p99, one that missed at 20/s: the
    headline names no best line and says why, not that nothing met the SLO."""
    unjudged = [replace(line(server, "grpc", None, None, None), rates_measured=(20.0, 40.0),
                        not_judged=("@ 20/s: too few requests for p99", "@ 40/s: too few requests for p99"))
                for server in ("tfserving", "triton")]
    lines = headline(*unjudged, line("tfserving", "rest-json", None, None, 20))
    assert lines[1] == ("  no best server and protocol: no line was judged to meet the SLO: 2 of 3 could "
                        "not be judged at any rate (too few effective requests for the SLO percentile: "
                        "run the steps longer)")
    sentence = verdict_sentence(unjudged[0])
    assert sentence.startswith("tfserving grpc [default] batch 1: not judged at any rate")


def test_a_line_whose_every_step_was_excluded_is_not_determined_rather_than_missed() -> None:
    excluded = replace(line("torchserve", "rest-binary", None, None, None), rates_measured=(20.0, 40.0),
                       excluded=("@ 20/s: generator invalid", "@ 40/s: generator invalid"))
    lines = headline(line("tfserving", "grpc", 140, 120, 160), excluded)
    assert lines[2] == ("  vs torchserve rest-binary: not determined here (every step was excluded: "
                        "generator-invalid or failed; see report.html)")


def test_the_demo_matrix_is_full_size_on_all_nine_combinations_with_a_search() -> None:
    experiment = load_experiment(demo.DEMO)
    assert (experiment.model.classes, experiment.model.features) == (64, 262_144)
    assert set(experiment.servers) == {"tfserving", "torchserve", "triton"}
    assert len(experiment.servers) * len(experiment.protocols) == 9
    assert experiment.load.search is not None and experiment.load.rates is None


@pytest.mark.parametrize(
    ("argv", "matrix", "out"),
    [([], demo.DEMO, Path("results/demo")), (["--smoke"], demo.SMOKE, Path("results/smoke")),
     (["--smoke", "--out", "results/smoke-ci"], demo.SMOKE, Path("results/smoke-ci"))],
)
def test_demo_runs_the_full_matrix_and_smoke_runs_the_small_one(monkeypatch, argv, matrix, out) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr("inferload.cli.main", lambda args: calls.append(args) or 1)  # stop after `run`
    parser = argparse.ArgumentParser()
    demo.register(parser.add_subparsers())
    args = parser.parse_args(["demo", *argv])
    assert demo.run_demo(args) == 1
    assert calls == [["run", str(matrix), "--out", str(out)]]


def test_smoke_and_another_matrix_together_are_refused() -> None:
    from inferload.cli import UsageError

    parser = argparse.ArgumentParser()
    demo.register(parser.add_subparsers())
    with pytest.raises(UsageError, match="--smoke or --experiment"):
        demo.run_demo(parser.parse_args(["demo", "--smoke", "--experiment", "x.yaml"]))


def test_excluded_steps_and_a_winner_met_not_surely_are_said_out_loud() -> None:
    shaky = replace(line("torchserve", "grpc", 20, None, None), max_rate_surely_met=False,
                    rates_measured=(20.0, 40.0), excluded=("@ 40/s: generator invalid",))
    lines = headline(shaky, line("tfserving", "rest-json", None, None, 20))
    assert lines[1].endswith("(true max in (0, ∞)); met, but not surely (p99 interval straddles the bound)")
    assert any(text.startswith("  caution: 1 of 2 measured rates were excluded") for text in lines)
    clean = headline(line("tfserving", "grpc", 140, 120, 160))
    assert not any("caution" in text for text in clean)

