"""server_metrics.jsonl is read back through its owner's reader: a header per monitoring session,
typed samples, torn last lines skipped, unknown versions refused with a message saying what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferload_formats import SchemaError
from serving.metrics_file import (
    SCHEMA,
    SCHEMA_VERSION,
    MonitoredServer,
    header,
    read_server_samples,
)

SAMPLE = {
    "t_ns": 5,
    "server": "torchserve",
    "kind": "torchserve",
    "source": "psutil",
    "cpu_percent": 12.5,
    "cpu_seconds": 3.25,
    "rss_bytes": 1000,
    "metrics": {'ts_inference_requests_total{model_name="linear"}': 7.0},
    "metrics_error": None,
}


def _write(path: Path, *lines: object, tail: str = "") -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)
    return path


def test_samples_come_back_typed_after_each_session_header(tmp_path: Path) -> None:
    server = MonitoredServer("torchserve", "torchserve", "http://127.0.0.1:1/metrics", pid=1)
    path = _write(
        tmp_path / "m.jsonl",
        header([server], 0.5),
        SAMPLE,
        header([server], 0.5),  # a resumed cell appends a second session
        {**SAMPLE, "t_ns": 9, "cpu_seconds": 4.0},
        tail='{"t_ns": 12, "server": "torch',  # the writer was killed mid-line
    )
    samples = read_server_samples(path)
    assert [s.t_ns for s in samples] == [5, 9]
    first = samples[0]
    assert (first.server, first.kind, first.source) == ("torchserve", "torchserve", "psutil")
    assert (first.cpu_percent, first.cpu_seconds, first.rss_bytes) == (12.5, 3.25, 1000)
    assert first.total("ts_inference_requests_total", model_name="linear") == 7.0
    assert first.total("ts_inference_requests_total", model_name="other") is None


def test_files_from_before_the_header_read_as_psutil_samples(tmp_path: Path) -> None:
    old = {k: v for k, v in SAMPLE.items() if k not in ("source", "cpu_seconds", "metrics_error")}
    (sample,) = read_server_samples(_write(tmp_path / "m.jsonl", old))
    assert (sample.source, sample.cpu_seconds, sample.cpu_percent) == ("psutil", None, 12.5)


@pytest.mark.parametrize(
    ("bad_header", "message"),
    [
        (
            {"schema": SCHEMA, "schema_version": SCHEMA_VERSION + 1},
            f"inferload.server_metrics format version {SCHEMA_VERSION + 1}; "
            f"this inferload reads version {SCHEMA_VERSION}",
        ),
        ({"schema": "other", "schema_version": 1}, "schema is 'other', expected 'inferload.server_metrics'"),
    ],
)
def test_unknown_schema_or_version_is_refused(tmp_path: Path, bad_header: dict, message: str) -> None:
    path = _write(tmp_path / "m.jsonl", bad_header, SAMPLE)
    with pytest.raises(SchemaError, match=f"m.jsonl: {message}"):
        read_server_samples(path)


def test_a_missing_file_has_no_samples(tmp_path: Path) -> None:
    assert read_server_samples(tmp_path / "absent.jsonl") == []
