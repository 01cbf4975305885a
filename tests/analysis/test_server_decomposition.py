"""Each cell's mean client latency is split with the server's own counters (queue + inference + rest),
and the split reaches summary.json, summary.md and report.html with the source of each figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_results import NS_PER_S, WINDOW_START_NS, ResultsBuilder, evenly

from analysis import read_results, write_report
from analysis.decomposition import server_decomposition
from serving.metrics_file import series_key

LABELS = {"model_name": "linear", "model_version": "default"}


def _sample(t_ns: int, cpu_seconds: float, requests: int, queue_us: float, inference_us: float) -> dict:
    return {
        "t_ns": t_ns,
        "server": "torchserve",
        "kind": "torchserve",
        "source": "psutil",
        "cpu_percent": 100.0,
        "cpu_seconds": cpu_seconds,
        "rss_bytes": 300_000_000,
        "metrics": {
            series_key("ts_inference_requests_total", LABELS): requests,
            series_key("ts_queue_latency_microseconds_total", LABELS): queue_us,
            series_key("ts_inference_latency_microseconds_total", LABELS): inference_us,
        },
    }


@pytest.fixture
def results(tmp_path: Path) -> ResultsBuilder:
    """torchserve rest-json at 40/s: 400 ok requests of 10 ms in the 10 s window. Between the samples
    that bracket it the server counted 400 requests, 400 ms queued and 1.6 s from job to response,
    and its process tree used 2 s of CPU: queue 1 ms, inference 4 - 1 = 3 ms, rest 10 - 1 - 3 = 6 ms,
    server request time 4 ms, 2 s / 400 = 5 ms of CPU per ok request."""
    builder = ResultsBuilder(tmp_path / "experiment")
    start, end = WINDOW_START_NS, WINDOW_START_NS + 10 * NS_PER_S
    metrics = [
        {"schema": "inferload.server_metrics", "schema_version": 1, "interval_s": 0.5, "servers": []},
        _sample(start - NS_PER_S // 4, 100.0, 10, 10_000, 40_000),
        _sample(start + 5 * NS_PER_S, 101.0, 210, 210_000, 840_000),  # inside: not used
        _sample(end + NS_PER_S // 4, 102.0, 410, 410_000, 1_640_000),
    ]
    builder.cell(
        server="torchserve", protocol="rest-json", rate=40, requests=evenly(400, 10.0), metrics=metrics
    )
    builder.cell(server="torchserve", protocol="rest-json", rate=80, requests=evenly(800, 10.0))  # no metrics
    return builder


def test_a_cell_with_only_excluded_repetitions_is_shown_marked(tmp_path: Path) -> None:
    """A busy machine can invalidate every run; the split is still shown, never as a usable cell."""
    builder = ResultsBuilder(tmp_path / "experiment")
    start, end = WINDOW_START_NS, WINDOW_START_NS + 10 * NS_PER_S
    metrics = [_sample(start - 1, 0.0, 0, 0, 0), _sample(end + 1, 1.0, 400, 400_000, 800_000)]
    builder.cell(
        protocol="rest-json", rate=40, requests=evenly(400, 10.0), metrics=metrics,
        valid=False, invalid_reasons=["generator lateness p99 9 ms is above the limit 5.0 ms"],
    )
    (row,) = server_decomposition(read_results(builder.root).cells)
    assert row.usable is False
    assert row.notes[0].startswith("excluded from verdicts (generator invalid)")
    assert (row.server_queue_ms, row.server_inference_ms) == (pytest.approx(1.0), pytest.approx(1.0))


def test_mean_latency_is_split_into_queue_inference_and_rest(results: ResultsBuilder) -> None:
    (row,) = server_decomposition(read_results(results.root).cells)
    assert (row.server, row.protocol, row.rate, row.repetitions, row.usable) == (
        "torchserve", "rest-json", 40.0, 1, True
    )
    assert row.client_latency_mean_ms == pytest.approx(10.0)
    assert row.server_queue_ms == pytest.approx(1.0)
    assert row.server_inference_ms == pytest.approx(3.0)
    assert row.rest_ms == pytest.approx(6.0)
    assert row.server_request_ms == pytest.approx(4.0)
    assert (row.server_requests, row.client_ok) == (400, 400)
    assert row.cpu_seconds == pytest.approx(2.0)
    assert row.cpu_seconds_per_ok == pytest.approx(0.005)
    assert row.sources["CPU"] == "psutil"
    assert "ts_queue_latency_microseconds" in row.sources["queue, inference, server request"]


def test_the_split_is_in_all_three_report_files(results: ResultsBuilder) -> None:
    paths = write_report(results.root)
    summary = json.loads(paths.json.read_text())
    (row,) = summary["server_decomposition"]
    assert (row["server_queue_ms"], row["rest_ms"]) == (pytest.approx(1.0), pytest.approx(6.0))
    markdown = paths.markdown.read_text()
    assert "## Server-side view per cell" in markdown
    assert "| torchserve | rest-json | default | 1 | 40/s | 10 | 1 | 3 | 6 | 4 | 400 / 400 | 5 |" in markdown
    html = paths.html.read_text()
    assert "The servers' own view: mean latency split by server metrics" in html
    assert "ts_queue_latency_microseconds" in html  # the source of the figures is named
    assert "a p99 cannot be split this way" in html
