"""benchmarks/perf_analyzer_reference.py: how it reads perf_analyzer's profile export, and how it says
how far the two tools agree (a ratio with an interval, per repetition). Pure functions, no servers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from perf_analyzer_reference import (  # noqa: E402
    ENCODINGS,
    holds_one,
    latency_ratio,
    parse_pairs,
    rate_interval,
    rate_ratio,
    verdict,
    window_requests,
)


def test_the_default_pairs_are_every_server_and_protocol_perf_analyzer_speaks() -> None:
    """Triton over HTTP (binary and JSON bodies) and gRPC, TF Serving over gRPC, TorchServe over HTTP."""
    assert set(ENCODINGS) == {("triton", "grpc"), ("triton", "rest-binary"), ("triton", "rest-json"),
                              ("tfserving", "grpc"), ("torchserve", "rest-binary")}
    assert parse_pairs("triton:grpc@20, tfserving:grpc", 7.5) == [("triton", "grpc", 20.0),
                                                                   ("tfserving", "grpc", 7.5)]


@pytest.mark.parametrize(("text", "named"), [
    ("torchserve:grpc", "not a server:protocol perf_analyzer speaks"),
    ("triton:grpc@fast", "after @ comes a rate"),
    ("triton:grpc@0", "positive number"),
    ("", "no pair given"),
])
def test_a_pair_it_cannot_measure_is_refused_naming_the_fix(text: str, named: str) -> None:
    with pytest.raises(SystemExit, match=named):
        parse_pairs(text, 30.0)


def test_the_export_counts_responses_inside_its_last_three_windows_with_latency_from_the_send() -> None:
    """Windows [0, 1, 2, 3, 4] s: the last three are [1 s, 4 s]. A response at 0.5 s (first window), one
    at 4.5 s (after) and a request with no response are left out; latencies are response - send."""
    s = 1_000_000_000
    export = {"experiments": [{
        "window_boundaries": [0, 1 * s, 2 * s, 3 * s, 4 * s],
        "requests": [
            {"timestamp": int(0.4 * s), "response_timestamps": [int(0.5 * s)]},
            {"timestamp": int(1.5 * s), "response_timestamps": [int(1.502 * s)]},
            {"timestamp": int(2.0 * s), "response_timestamps": [int(2.001 * s), int(2.010 * s)]},
            {"timestamp": int(3.9 * s), "response_timestamps": []},
            {"timestamp": int(4.4 * s), "response_timestamps": [int(4.5 * s)]},
        ],
    }]}
    found = window_requests(export)
    assert found is not None
    sends, latency_ms, bounds = found
    assert bounds == (1 * s, 4 * s)
    assert sends.tolist() == [1.5 * s, 2.0 * s]
    np.testing.assert_allclose(latency_ms, [2.0, 10.0], atol=1e-6)
    assert window_requests({"experiments": [{"window_boundaries": [0, s], "requests": []}]}) is None


def test_the_rate_ratio_has_the_exact_interval_of_two_poisson_counts() -> None:
    """100 and 100 responses over equal spans: ratio 1; Clopper-Pearson for 100 of 200 is
    [0.4287, 0.5713], so the ratio lies in [0.4287/0.5713, 0.5713/0.4287] = [0.750, 1.333]."""
    found = rate_ratio(100, 10.0, 100, 10.0)
    assert found["ratio"] == 1.0
    low, high = found["interval"]
    assert low == pytest.approx(0.750, abs=0.002) and high == pytest.approx(1.333, abs=0.002)
    # the spans count: 100 in 5 s against 100 in 10 s is twice the rate
    assert rate_ratio(100, 5.0, 100, 10.0)["ratio"] == 2.0
    assert not holds_one(rate_ratio(400, 10.0, 200, 10.0)["interval"])


def test_a_poisson_rate_interval_holds_its_count() -> None:
    """Garwood's exact interval for 100 events in 10 s: [8.14, 12.16] per second."""
    low, high = rate_interval(100, 10.0)
    assert low == pytest.approx(8.14, abs=0.01) and high == pytest.approx(12.16, abs=0.01)


def test_a_latency_ratio_takes_opposite_ends_and_leaves_an_open_end_open() -> None:
    theirs = {"p99_ms": 12.0, "p99_interval_ms": [10.0, None]}
    ours = {"p99_ms": 6.0, "p99_interval_ms": [5.0, 8.0]}
    found = latency_ratio(theirs, ours, "p99")
    assert found == {"ratio": 2.0, "interval": [1.25, None]}
    assert not holds_one(found["interval"])  # its lower end alone proves perf_analyzer higher


def test_the_verdict_counts_repetitions_beyond_the_noise_and_names_the_side() -> None:
    agree = {"ratio": 1.05, "interval": [0.9, 1.2]}
    higher = {"ratio": 1.5, "interval": [1.2, 1.9]}
    assert verdict([agree, agree]) == "agree within the noise in every repetition"
    assert verdict([agree, higher]) == ("differ beyond the noise in 1 of 2 repetitions "
                                        "(1 with perf_analyzer higher)")
    assert verdict([agree, {"ratio": None, "interval": [None, None]}]) == "not measured in every repetition"
    # an open end proves nothing either way: no "agree" from too few samples
    unknown = {"ratio": 3.0, "interval": [None, None]}
    assert verdict([agree, unknown]).startswith("no difference shown, but no agreement either")
