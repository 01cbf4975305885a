"""`inferload export` writes the artifacts into --out and rejects bad dimensions before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cli import main
from models.artifacts import ArtifactLayout
from models.linear import LinearSpec


def test_cli_exports_into_a_directory(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    assert main(["export", "--classes", "3", "--features", "8", "--seed", "5", "--out", str(out)]) == 0
    assert ArtifactLayout(out).check().spec() == LinearSpec(classes=3, features=8, seed=5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--features", "0"], "features must be a positive integer"),
        (["--classes", "-2"], "classes must be a positive integer"),
    ],
)
def test_cli_rejects_bad_dimensions(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    assert main(["export", *args, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
