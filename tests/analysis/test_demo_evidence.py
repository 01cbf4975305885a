"""The demo's headline ends with the evidence behind it: paired verdicts, the A/A figure, the machine."""

from __future__ import annotations

from pathlib import Path

from synthetic_results import ResultsBuilder

from inferload.commands import demo


def test_the_headline_adds_paired_verdicts_the_aa_figure_and_the_machine(tmp_path: Path) -> None:
    """TF Serving gRPC (10 ms, twinned at 11 ms) against TorchServe gRPC (30 ms) in rounds 0 and 1 at 40
    and 80 req/s, one repetition: the twins' log ratios are both ln 1.1, so the A/A spread is 0 and
    TF Serving's ratio of 1/3 lies beyond it: lower *here*, not surely (one repetition)."""
    results = ResultsBuilder(tmp_path / "demo")
    lines_run = (("tfserving", "a", 10.0), ("tfserving", "b", 11.0), ("torchserve", None, 30.0))
    for k, rate in enumerate([40.0, 80.0]):
        machine = {"window_ns": [k, k + 1], "cpu_count": 2, "steal_share": 0.0, "load_average_1m": 1.0,
                   "other_cpu_cores": 0.0, "probe": None,
                   "calibration": {"index": k, "label": f"after round {k}", "seconds_away": 1.0, "batch": 1,
                                   "predict_ms": 3.0 + 0.1 * k, "bandwidth_gb_s": 10.0}}
        for server, arm, latency in lines_run:
            results.cell(server=server, protocol="grpc", rate=rate, latency_ms=latency, round_index=k,
                         arm=arm, machine=machine)
    lines = demo.headline(tmp_path / "demo")
    text = "\n".join(lines)
    assert "(A/A twin)" not in text, "the twin is the A/A's, not a line of the headline"
    paired = next(line for line in lines if line.startswith("    tfserving grpc [default] vs torchserve"))
    assert "p99 latency ratio 0.33" in paired and "over 2 paired cell(s)" in paired
    assert "lower here than" in paired and "one repetition: no between-run interval" in paired
    assert "A/A (tfserving grpc [default] batch 1 measured twice in every round, 2 pair(s))" in text
    assert "machine: the model's in-process predict took 3-3.1 ms (median 3.05)" in text
    assert "no cell ran while the machine was off by more than 25%" in text
    assert "A/A max rate: tfserving grpc searched twice: [80, ∞) and [80, ∞) (the brackets overlap)" in text


def test_an_aa_twin_is_never_the_best_configuration(tmp_path: Path) -> None:
    from analysis import read_results
    from analysis.verdicts import best_configuration, sweep_verdicts

    results = ResultsBuilder(tmp_path / "twin")
    results.cell(server="tfserving", protocol="grpc", rate=40, latency_ms=10.0, round_index=0, arm="a")
    results.cell(server="tfserving", protocol="grpc", rate=80, latency_ms=10.0, round_index=1, arm="b")
    best = best_configuration(sweep_verdicts(read_results(tmp_path / "twin").cells))
    assert best.group is not None and best.group.arm == "" and best.max_rate_under_slo == 40.0
    assert all(group.arm != "b" for group in (*best.beats, *best.indistinguishable_from))
