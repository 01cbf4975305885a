"""`inferload report AFTER --compare BEFORE --fail-on-regression`: exit 1 when a p99 or a max rate got
worse beyond the noise of both runs (their 95 % intervals apart), naming the cells; exit 0 when two
runs of the same build differ only by noise; refuse runs of different models, SLOs or TF Serving kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import ResultsBuilder, lognormal

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
                 "--fail-on-regression"])


def test_an_injected_30_percent_p99_regression_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = build(tmp_path / "before", seed=1)
    after = build(tmp_path / "after", seed=2, scale=1.3)
    assert gate(before.root, after.root, tmp_path) == 1
    out = capsys.readouterr().out
    assert "regression(s) beyond the noise" in out
    for rate in (*RATES, 160.0):
        assert f"worse: torchserve grpc [default] batch 1 @ {rate:g}/s" in out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    regressed = summary["comparison"]["regressions"]
    assert [f"torchserve grpc [default] batch 1 @ {r:g}/s" for r in (*RATES, 160.0)] == regressed
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
    assert {d["verdict"] for d in p99} == {"indistinguishable"}


def test_a_lower_max_rate_beyond_the_bracket_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """before: 40/s and 80/s surely met, 160/s surely missed -> true max in [80, 160).
    after: 80/s surely missed (latencies x 4) -> true max in [40, 80): below before's bracket."""
    before = ResultsBuilder(tmp_path / "before")
    after = ResultsBuilder(tmp_path / "after")
    for rate, before_ms, after_ms in [(40, 20.0, 20.0), (80, 30.0, 400.0), (160, 400.0, 400.0)]:
        before.cell(rate=rate, latency_ms=before_ms)
        after.cell(rate=rate, latency_ms=after_ms)
    assert gate(before.root, after.root, tmp_path) == 1
    out = capsys.readouterr().out
    assert "worse: torchserve grpc [default] batch 1: 80 [80–160] -> 40 [40–80]" in out


def test_without_the_flag_regressions_are_printed_but_exit_0(tmp_path: Path) -> None:
    before = build(tmp_path / "before", seed=1)
    after = build(tmp_path / "after", seed=2, scale=1.3)
    assert main(["report", str(after.root), "--compare", str(before.root), "--out", str(tmp_path / "r")]) == 0


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
    assert main(["report", str(results.root), "--fail-on-regression"]) == 2
    assert "--fail-on-regression needs --compare" in capsys.readouterr().err
