"""`inferload report AFTER --compare BEFORE --fail-on-regression`: exit 1 when a cell's latency
distribution (a rank test over time slices, Holm-corrected), a p99 or a max rate got worse beyond the
noise of both runs and beyond the threshold, naming the cells; exit 0 when two runs of the same build
differ only by noise; exit 2, judging nothing, for runs of different models, SLOs or TF Serving kinds,
from different machines, or between which the machine's calibration drifted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder, lognormal, poisson_lognormal

from analysis.gate import FLAGGED, OVERLOADED
from inferload.cli import main

RATES = (40.0, 80.0)
REQUESTS = 4000  # per cell: the p99 interval is about -6 %..+7 % wide for sigma 0.5


def build(root: Path, seed: int, *, scale: float = 1.0, **manifest: object) -> ResultsBuilder:
    """A synthetic "build": per rate, lognormal latencies (median 20 ms, sigma 0.5: p99 ~64 ms, under
    the 100 ms SLO), seeded, optionally `scale`d, then 160/s, which surely misses (p99 ~ 256 ms)."""
    builder = ResultsBuilder(root)
    for i, rate in enumerate((*RATES, 160.0)):
        requests = lognormal(
            seed * 10 + i,
            REQUESTS,
            median_ms=80.0 if rate == 160.0 else 20.0,
            sigma=0.5,
            window_s=REQUESTS / rate,
            scale=scale,
        )
        builder.cell(rate=rate, requests=requests, window_s=REQUESTS / rate)
    if manifest:
        document = json.loads((root / "manifest.json").read_text())
        document.update(manifest)
        (root / "manifest.json").write_text(json.dumps(document))
    return builder


def gate(before: Path, after: Path, tmp_path: Path) -> int:
    return main(["report", str(after), "--compare", str(before), "--out", str(tmp_path / "report"),
                 "--fail-on-regression", "--no-plots"])


def test_an_injected_30_percent_p99_regression_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = build(tmp_path / "before", seed=1)
    after = build(tmp_path / "after", seed=2, scale=1.3)
    assert gate(before.root, after.root, tmp_path) == 1
    out = capsys.readouterr().out
    assert "regression(s) beyond the noise" in out
    for rate in RATES:
        assert f"worse: torchserve grpc [default] batch 1 @ {rate:g}/s" in out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    regressed = summary["comparison"]["regressions"]
    assert [f"torchserve grpc [default] batch 1 @ {r:g}/s" for r in RATES] == regressed
    # 160/s was past the SLO in both runs: an overloaded queue, listed but not judged
    (overloaded,) = [d for d in summary["comparison"]["p99_ms"] if d["cell"].endswith("@ 160/s")]
    assert overloaded["verdict"] == OVERLOADED
    # the SLO still holds at 80/s after the regression (p99 ~83 ms): the max rate did not move
    assert [d["verdict"] for d in summary["comparison"]["max_rate_under_slo"]] == ["indistinguishable"]
    assert "regression(s) beyond the noise of both runs" in (tmp_path / "report" / "summary.md").read_text()


def test_two_runs_of_the_same_build_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same distributions, different seeds: p99s differ (noise), but every interval pair overlaps."""
    before = build(tmp_path / "before", seed=1)
    after = build(tmp_path / "after", seed=2)
    assert gate(before.root, after.root, tmp_path) == 0
    assert "no regression beyond the noise" in capsys.readouterr().out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    p99 = summary["comparison"]["p99_ms"]
    assert any(d["delta"] != 0 for d in p99), "the two runs must differ by noise, or the test proves nothing"
    assert {d["verdict"] for d in p99 if not d["cell"].endswith("@ 160/s")} == {"indistinguishable"}
    assert [d["verdict"] for d in p99 if d["cell"].endswith("@ 160/s")] == [OVERLOADED]  # missed in both


def test_a_lower_max_rate_beyond_the_bracket_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """before: 40, 80 and 160/s surely met, 320/s surely missed -> true max in [160, 320).
    after: 80/s surely missed (latencies x 13) -> true max in [40, 80): below before's bracket by more
    than the 10 % threshold (80 x 1.1 <= 160), so the max rate fell by at least that much."""
    before = ResultsBuilder(tmp_path / "before")
    after = ResultsBuilder(tmp_path / "after")
    for rate, before_ms, after_ms in [(40, 20.0, 20.0), (80, 30.0, 400.0), (160, 30.0, 400.0),
                                      (320, 400.0, 400.0)]:
        before.cell(rate=rate, latency_ms=before_ms)
        after.cell(rate=rate, latency_ms=after_ms)
    assert gate(before.root, after.root, tmp_path) == 1
    out = capsys.readouterr().out
    assert "worse: torchserve grpc [default] batch 1: 160 [160–320] -> 40 [40–80]" in out


def test_adjacent_max_rate_brackets_are_indistinguishable(tmp_path: Path) -> None:
    """before: true max in [80, 160), after: in [40, 80): the maximum fell, but perhaps from 81 to 79:
    not beyond the 10 % threshold, so the line's max rate is indistinguishable here."""
    before = ResultsBuilder(tmp_path / "before")
    after = ResultsBuilder(tmp_path / "after")
    for rate, before_ms, after_ms in [(40, 20.0, 20.0), (80, 30.0, 400.0), (160, 400.0, 400.0)]:
        before.cell(rate=rate, latency_ms=before_ms)
        after.cell(rate=rate, latency_ms=after_ms)
    main(["report", str(after.root), "--compare", str(before.root), "--out", str(tmp_path / "report"),
          "--no-plots"])
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    (line,) = summary["comparison"]["max_rate_under_slo"]
    assert (line["before_interval"], line["after_interval"]) == ([80.0, 160.0], [40.0, 80.0])
    assert line["verdict"] == "indistinguishable"


def test_without_the_flag_regressions_are_printed_but_exit_0(tmp_path: Path) -> None:
    before = build(tmp_path / "before", seed=1)
    after = build(tmp_path / "after", seed=2, scale=1.3)
    assert main(["report", str(after.root), "--compare", str(before.root), "--out", str(tmp_path / "r"),
                 "--no-plots"]) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"classes": 1000, "features": 262144, "seed": 0}}, "they differ in model"),
        ({"slo": {"percentile": 99.0, "latency_ms": 50.0}}, "they differ in SLO 'p99 latency <= 100 ms"),
        (
            {"tfserving_kind": "tensorflow_model_server"},
            "TF Serving kind tfs-compat vs tensorflow_model_server",
        ),
    ],
    ids=["model", "slo", "tfserving-kind"],
)
def test_different_models_slos_or_tfserving_kinds_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], message: str
) -> None:
    before = ResultsBuilder(tmp_path / "before")
    before.cell(rate=40, latency_ms=20.0)
    after = ResultsBuilder(tmp_path / "after")
    after.cell(rate=40, latency_ms=20.0)
    document = json.loads((after.root / "manifest.json").read_text())
    document.update(change)
    (after.root / "manifest.json").write_text(json.dumps(document))
    assert gate(before.root, after.root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "cannot compare" in err and message in err


def test_the_gate_needs_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = ResultsBuilder(tmp_path / "after")
    results.cell()
    assert main(["report", str(results.root), "--fail-on-regression", "--no-plots"]) == 2
    assert "--fail-on-regression needs --compare" in capsys.readouterr().err


# The smoke matrix's shape: 6 server x protocol cells at 25/s for 18 s (~450 requests each), Poisson
# arrivals, latencies lognormal around 10 ms with a long tail (sigma 0.6: p99 ~4x the median); the
# machine's calibration (the model's predict between rounds, no load) around 2.6 ms; one machine.
PAIRS = [(s, p) for s in ("tfserving", "torchserve") for p in ("rest-json", "rest-binary", "grpc")]
MACHINE = {"cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "cpu_count_logical": 2}


def smoke_like(root: Path, seed: int, *, scale: float = 1.0,
               calibration: tuple[float, ...] = (2.6, 2.62, 2.58),
               machine: dict[str, object] = MACHINE) -> ResultsBuilder:
    builder = ResultsBuilder(root)
    for i, (server, protocol) in enumerate(PAIRS):
        requests = poisson_lognormal(seed * 100 + i, 25.0, 18.0, median_ms=10.0, sigma=0.6, scale=scale)
        builder.cell(server=server, protocol=protocol, rate=25.0, requests=requests, window_s=18.0)
    builder.calibration(calibration)
    document = json.loads((root / "manifest.json").read_text())
    document["machine"] = machine
    (root / "manifest.json").write_text(json.dumps(document))
    return builder


def test_a_30_percent_slowdown_on_the_smoke_matrix_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request 30 % slower, ~450 requests a cell: each cell's p99 interval is too wide to call it
    (the old gate passed this), but the whole distribution, over 10 time slices a run, moves in every
    slice: all 6 cells worse, Holm-corrected, beyond the 10 % threshold."""
    before = smoke_like(tmp_path / "before", seed=1)
    after = smoke_like(tmp_path / "after", seed=2, scale=1.3)
    assert gate(before.root, after.root, tmp_path) == 1
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    comparison = summary["comparison"]
    assert [d["verdict"] for d in comparison["distributions"]] == ["worse"] * 6
    for shift in comparison["distributions"]:
        assert shift["low"] <= 1.3 <= shift["high"] and shift["adjusted_p"] < 0.05
    assert all(d["verdict"] != "worse" for d in comparison["p99_ms"]), "p99 intervals alone would not see it"
    assert "6 regression(s) beyond the noise" in out and "machine pace: " in out


def test_an_a_a_pair_of_the_smoke_matrix_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same build twice (different seeds, the calibration 2 % apart): nothing is worse."""
    before = smoke_like(tmp_path / "before", seed=1)
    after = smoke_like(tmp_path / "after", seed=3, calibration=(2.64, 2.66, 2.65))
    assert gate(before.root, after.root, tmp_path) == 0
    assert "no regression beyond the noise" in capsys.readouterr().out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert {d["verdict"] for d in summary["comparison"]["distributions"]} == {"indistinguishable"}


def test_a_drifted_machine_is_refused_with_both_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's pair: the machine's predict took 2.57 ms before and 3.54 ms after (+38 %). The gate
    judges nothing (exit 2) and names both figures; without --fail-on-regression the report still says
    how the pace moved."""
    before = smoke_like(tmp_path / "before", seed=1, calibration=(2.57, 2.57, 2.57))
    after = smoke_like(tmp_path / "after", seed=2, calibration=(3.54, 3.54, 3.54))
    assert gate(before.root, after.root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "the machine drifted between the runs" in err
    assert "2.57 ms before and 3.54 ms after (+38%; tolerance ±10%)" in err
    assert main(["report", str(after.root), "--compare", str(before.root), "--out", str(tmp_path / "r"),
                 "--no-plots"]) == 0
    assert "+38%" in capsys.readouterr().out


def test_a_base_run_from_another_machine_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = smoke_like(tmp_path / "before", seed=1)
    after = smoke_like(tmp_path / "after", seed=2,
                       machine={"cpu_model": "AMD EPYC 7R13 Processor", "cpu_count_logical": 2})
    assert gate(before.root, after.root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz x 2 CPUs" in err
    assert "AMD EPYC 7R13 Processor x 2 CPUs" in err


def _other_work(cores: float) -> dict[str, object]:
    """A cell's machine record with `cores` of other processes' CPU in its window (analysis/drift.py)."""
    second = 1_000_000_000
    return {"window_ns": [second, 2 * second], "cpu_count": 2, "steal_share": 0.0, "load_average_1m": 1.0,
            "other_cpu_cores": cores, "calibration": None, "probe": None}


def test_a_cell_the_machine_watch_flagged_is_listed_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same 30 % slowdown as above, but at 40/s the after run had other work beside it (0.9 cores,
    limit 0.25): that cell measured the machine as much as the server, so it is left out, like an
    overloaded one; 80/s, unflagged, still fails the gate."""
    before = build(tmp_path / "before", seed=1)
    after = ResultsBuilder(tmp_path / "after")
    for i, rate in enumerate(RATES):
        requests = lognormal(20 + i, REQUESTS, median_ms=20.0, sigma=0.5, window_s=REQUESTS / rate, scale=1.3)
        after.cell(rate=rate, requests=requests, window_s=REQUESTS / rate,
                   machine=_other_work(0.9 if rate == 40.0 else 0.0))
    assert gate(before.root, after.root, tmp_path) == 1
    out = capsys.readouterr().out
    assert "worse: torchserve grpc [default] batch 1 @ 80/s" in out
    assert "worse: torchserve grpc [default] batch 1 @ 40/s" not in out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["comparison"]["regressions"] == ["torchserve grpc [default] batch 1 @ 80/s"]
    (flagged,) = [d for d in summary["comparison"]["p99_ms"] if d["cell"].endswith("@ 40/s")]
    assert flagged["verdict"] == FLAGGED


def test_the_threshold_pools_both_runs_aa_pairs(tmp_path: Path) -> None:
    """Each run measured its twin at two rates: arms (10, 11) and (20, 18) ms before, (40, 44) and
    (30, 30) after. Alone, each run's two pairs give a bound with t(0.975, 1) = 12.7; pooled, the four log
    ratios 0.0953, -0.1054, 0.0953, 0 have mean 0.0213 and s = 0.0957, t(0.975, 3) = 3.182, and the
    threshold is exp(0.0213 + 3.182 x 0.0957 x sqrt(1 + 1/4)) - 1 = 0.436."""
    from analysis import read_results
    from analysis.compare import threshold_of

    for name, arms in (("before", [(10, 10.0, 11.0), (20, 20.0, 18.0)]), ("after", [(10, 40.0, 44.0),
                                                                                    (20, 30.0, 30.0)])):
        results = ResultsBuilder(tmp_path / name)
        for k, (rate, a, b) in enumerate(arms):
            results.cell(rate=rate, latency_ms=a, round_index=k, arm="a")
            results.cell(rate=rate, latency_ms=b, round_index=k, arm="b")
    limit, source = threshold_of(read_results(tmp_path / "before"), read_results(tmp_path / "after"))
    assert limit == pytest.approx(0.436, abs=0.002)
    assert "over both runs' 4 A/A pairs, ±44%" in source
