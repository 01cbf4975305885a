"""One percentile method everywhere: nearest rank (loadtest._percentiles), in the generator's own
validity verdict (load.json's lateness p99), in the reports, and in the model-compute floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import analysis.percentiles
from loadtest import LoadSettings, RecordWriter, RequestRecord, RunHeader, read_run
from loadtest._percentiles import percentile
from loadtest._summary import summarize

MS = 1_000_000
S = 1_000_000_000


def test_the_reports_use_the_generators_percentile() -> None:
    assert analysis.percentiles.percentile is percentile


def test_the_generators_lateness_p99_is_the_nearest_rank(tmp_path: Path) -> None:
    """100 requests sent 1, 2, ..., 100 ms late: nearest-rank p50 = 50, p99 = 99 ms (an interpolating
    percentile would say 50.5 and 99.01)."""
    settings = LoadSettings(server="torchserve", protocol="grpc", rate=10.0, duration_s=10.0, features=8)
    header = RunHeader(run="r", stream=0, settings={**settings.resolved(), "streams": 1},
                       measure_start_ns=0, measure_end_ns=10 * S)
    with RecordWriter(tmp_path / "requests.0.jsonl", header) as writer:
        for k in range(100):
            at = k * S // 10
            writer.add(RequestRecord(seq=k, stream=0, server="torchserve", protocol="grpc", batch=1,
                                     scheduled_ns=at, sent_ns=at + (k + 1) * MS, done_ns=at + 200 * MS,
                                     bytes_out=1, bytes_in=1, status="ok", code=0, error=None))
    summary = summarize(settings, read_run(tmp_path), cpu_percent=[1.0], interrupted=False)
    assert summary.lateness_ms["p50"] == 50.0
    assert summary.lateness_ms["p99"] == 99.0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 20, 49, 50])
@pytest.mark.parametrize("p", [50.0, 90.0])
def test_the_floors_numpy_percentile_is_the_same_nearest_rank(n: int, p: float) -> None:
    """models/ imports no other package of ours, so the floor asks numpy for the same method by name."""
    values = np.random.default_rng(n).lognormal(0.0, 1.0, n)
    assert float(np.percentile(values, p, method="inverted_cdf")) == percentile(values, p)
