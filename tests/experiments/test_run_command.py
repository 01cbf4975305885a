"""`inferload run`: a dry run lists cells and the estimated time; a bad matrix exits 2 naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_dry_run_lists_every_cell_and_the_estimate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", str(EXPERIMENTS / "smoke.yaml"), "--dry-run", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert out.count("-r25-rep0") == 9
    assert "9 cell(s) to run, 0 skipped; estimated" in out
    assert not (tmp_path / "r").exists(), "a dry run writes nothing"


def test_dry_run_lists_skipped_cells_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXPERIMENTS / "batch-sweep.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "skip torchserve-rest-json-b1024-default-c1-rep0: request body" in out
    assert "is over torchserve's rest-json limit of 537.9 MB" in out


def test_only_narrows_the_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXPERIMENTS / "smoke.yaml"), "--dry-run", "--only", "*grpc*"]) == 0
    assert "3 cell(s) to run" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "words"), [
    ("name: x\n", "model: required field is missing"),
    ((EXPERIMENTS / "smoke.yaml").read_text().replace("rates: [25]", "rates: [0]"), "load.rates.0"),
])
def test_a_bad_matrix_exits_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               text: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert words in err and str(path) in err


def test_a_pattern_matching_no_cell_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXPERIMENTS / "smoke.yaml"), "--only", "mlserver"]) == 2
    assert "matches no cell" in capsys.readouterr().err


def test_refine_on_a_closed_loop_matrix_is_refused_before_the_sweep(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Bisection moves Poisson rates: a closed-loop matrix is refused before any cell runs."""
    args = ["run", str(EXPERIMENTS / "batch-sweep.yaml"), "--refine", "1", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    assert "needs an open-loop matrix" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_one_repetition_is_told_what_it_can_and_cannot_claim(capsys: pytest.CaptureFixture[str]) -> None:
    """smoke.yaml asks for one repetition and an SLO: the run goes ahead, with a note that it can bracket
    this run's max rate but has no between-run interval, so it never says 'surely'."""
    assert main(["run", str(EXPERIMENTS / "smoke.yaml"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "note: repetitions: 1 with an SLO (p90 <= 100 ms)" in err
    assert "no between-run interval" in err and "'surely'" in err and "repetitions: 3" in err


def test_repetitions_give_no_such_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (EXPERIMENTS / "smoke.yaml").read_text().replace("repetitions: 1", "repetitions: 3")
    path = tmp_path / "three.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "note: repetitions" not in capsys.readouterr().err
