"""What a cell takes from calibration.jsonl: the calibration nearest in time, and the probe's calls in its
own window (nearest-rank median and p90, the smallest batch only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.calibration import (
    CalibrationError,
    CalibrationWriter,
    PredictTiming,
    ProbeSample,
    ProbeWindow,
    new_header,
    read_calibration,
)

S = 1_000_000_000


def write_log(path: Path) -> None:
    header = new_header(framework="torch", threads=1, model={"classes": 4, "features": 8, "seed": 0},
                        batches=[1, 8], cpus=None, probe_interval_s=0.5)
    with CalibrationWriter(path, header) as writer:
        timings = [PredictTiming(1, 3.0, 3.5, 30), PredictTiming(8, 9.0, 9.9, 30)]
        writer.add_point("before round 0", 10 * S, 0.5, timings, 10.0)
        # the probe: 1..5 ms at batch 1 between 20 s and 24 s, one batch-8 call that never counts
        for k, ms in enumerate([5.0, 1.0, 4.0, 2.0, 3.0]):
            writer.add_probe(ProbeSample(t_ns=(20 + k) * S, batch=1, ms=ms, calls=3))
        writer.add_probe(ProbeSample(t_ns=21 * S, batch=8, ms=99.0, calls=3))
        writer.add_point("after round 0", 30 * S, 0.5, [PredictTiming(1, 4.0, 4.5, 30)], 8.0)


def test_the_nearest_calibration_is_the_closest_in_time(tmp_path: Path) -> None:
    write_log(tmp_path / "calibration.jsonl")
    log = read_calibration(tmp_path / "calibration.jsonl")
    assert [p.index for p in log.points] == [0, 1]
    assert log.nearest(19 * S).label == "before round 0"  # type: ignore[union-attr]
    assert log.nearest(21 * S).label == "after round 0"  # type: ignore[union-attr]
    assert log.points[0].predict_at(6).batch == 8  # type: ignore[union-attr]  # 6 is nearer 8 than 1
    assert log.points[1].predict_at(8).batch == 1  # type: ignore[union-attr]  # the only one there


@pytest.mark.parametrize(("start", "end", "expected"), [
    # sorted 1 2 3 4 5: median = the 3rd (rank ceil(0.5 x 5)), p90 = the 5th (rank ceil(0.9 x 5))
    (20, 25, ProbeWindow(batch=1, median_ms=3.0, p90_ms=5.0, n=5)),
    # 5 1 4 (20-22 s): sorted 1 4 5: median the 2nd, p90 the 3rd; the end is exclusive
    (20, 23, ProbeWindow(batch=1, median_ms=4.0, p90_ms=5.0, n=3)),
    (25, 29, None),
])
def test_the_probe_window_summarises_the_calls_inside_it(tmp_path: Path, start: int, end: int,
                                                        expected: ProbeWindow | None) -> None:
    write_log(tmp_path / "calibration.jsonl")
    assert read_calibration(tmp_path / "calibration.jsonl").probe_window(start * S, end * S) == expected


def test_a_resumed_run_appends_and_keeps_counting(tmp_path: Path) -> None:
    path = tmp_path / "calibration.jsonl"
    write_log(path)
    header = new_header(framework="torch", threads=1, model={"classes": 4, "features": 8, "seed": 0},
                        batches=[1], cpus=None, probe_interval_s=0.5)
    with CalibrationWriter(path, header) as writer:
        writer.add_point("before round 1", 40 * S, 0.5, [PredictTiming(1, 3.0, 3.5, 30)], 10.0)
    assert [p.index for p in read_calibration(path).points] == [0, 1, 2]


def test_a_torn_last_line_is_skipped_but_a_torn_middle_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calibration.jsonl"
    write_log(path)
    text = path.read_text()
    path.write_text(text + '{"kind": "probe", "t_ns": 1')
    assert len(read_calibration(path).probes) == 6
    path.write_text(text.replace('"kind": "probe"}', '"kind": "pro', 1))
    with pytest.raises(CalibrationError, match="line 3 is not valid JSON"):
        read_calibration(path)
