"""The in-process floor: one record per framework × batch, checked against the reference, saved as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cli import main
from models.artifacts import ArtifactLayout
from models.floor import FloorRecord, measure_floor, read_floor, write_floor
from models.linear import LinearSpec


def test_floor_has_a_record_per_framework_and_batch(small_artifacts: ArtifactLayout) -> None:
    records = measure_floor(small_artifacts, batches=[1, 4], repeats=5)
    assert [(r.framework, r.batch) for r in records] == [
        (framework, batch) for framework in ("numpy", "tensorflow", "torch") for batch in (1, 4)
    ]
    for record in records:
        assert record.n == 5
        assert 0 < record.median_ms <= record.p90_ms


def test_floor_builds_the_tensorflow_model_in_memory_from_a_spec() -> None:
    [record] = measure_floor(
        LinearSpec(classes=4, features=32), batches=[2], repeats=3, frameworks=["tensorflow"]
    )
    assert (record.framework, record.batch, record.n) == ("tensorflow", 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batches": [0]}, "batch sizes must be positive"),
        ({"repeats": 0}, "repeats must be at least 1"),
        ({"frameworks": ["jax"]}, "unknown framework"),
    ],
)
def test_floor_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        measure_floor(LinearSpec(classes=2, features=4), **kwargs)


def test_floor_json_round_trips(tmp_path: Path) -> None:
    records = [FloorRecord("numpy", 1, 0.5, 0.7, 10), FloorRecord("torch", 8, 1.5, 2.0, 10)]
    path = write_floor(records, tmp_path / "floor.json", spec=LinearSpec(2, 4))
    assert read_floor(path) == records


def test_reading_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "floor.json"
    path.write_text('{"schema": "inferload.floor", "schema_version": 99, "records": []}')
    newer = "version 99; this inferload reads version 1: it was written by a newer inferload"
    with pytest.raises(ValueError, match=newer):
        read_floor(path)


def test_floor_command_writes_json(small_artifacts: ArtifactLayout, tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    args = [
        "floor",
        "--artifacts",
        str(small_artifacts.root),
        "--batch",
        "1",
        "--batch",
        "3",
        "--repeats",
        "3",
    ]
    assert main([*args, "--framework", "numpy", "--framework", "torch", "--out", str(out)]) == 0
    assert [(r.framework, r.batch) for r in read_floor(out)] == [
        ("numpy", 1),
        ("numpy", 3),
        ("torch", 1),
        ("torch", 3),
    ]


def test_floor_command_says_how_to_create_missing_artifacts(tmp_path: Path, capsys) -> None:
    assert main(["floor", "--artifacts", str(tmp_path), "--out", str(tmp_path / "f.json")]) == 2
    assert "inferload export --out" in capsys.readouterr().err
