"""Latency decomposition at the lowest load: encode, compute floor, transport + server overhead, queueing."""

from __future__ import annotations

import pytest
from synthetic_results import ResultsBuilder

from analysis import read_results
from analysis.decomposition import decompose


def _payload(server: str, protocol: str, batch: int, encode_ms: float) -> dict[str, object]:
    return {
        "server": server,
        "protocol": protocol,
        "batch": batch,
        "features": 1024,
        "body_bytes": 4096 * batch,
        "encode_ms_median": encode_ms,
        "encode_ms_min": encode_ms,
        "repeats": 5,
        "encoder": "protobuf",
    }


@pytest.mark.parametrize(
    ("server", "framework", "latency", "service", "floor", "encode", "overhead", "queueing"),
    [
        ("torchserve", "torch", 12.0, 9.0, 2.0, 0.5, 7.0, 3.0),
        ("tfserving", "tensorflow", 8.0, 8.0, 1.5, 0.25, 6.5, 0.0),
    ],
)
def test_decomposition_arithmetic(
    results: ResultsBuilder,
    server: str,
    framework: str,
    latency: float,
    service: float,
    floor: float,
    encode: float,
    overhead: float,
    queueing: float,
) -> None:
    """At 10/s (the lowest rate), e.g. torchserve: latency p50 12 ms, service p50 9 ms, torch floor 2 ms,
    encode 0.5 ms -> transport + server = 9 - 2 = 7 ms, queueing = 12 - 9 = 3 ms.
    The 50/s cell (40 ms) must not be used, nor the numpy floor or the batch-8 floor."""
    results.cell(
        server=server,
        rate=10,
        latency_ms=latency,
        service_ms=service,
        payloads=[_payload(server, "grpc", 1, encode)],
    )
    results.cell(server=server, rate=50, latency_ms=40.0)
    results.floor(
        [
            {"framework": framework, "batch": 1, "median_ms": floor},
            {"framework": "numpy", "batch": 1, "median_ms": 99.0},
            {"framework": framework, "batch": 8, "median_ms": 99.0},
        ]
    )
    experiment = read_results(results.root)
    (part,) = decompose(experiment.cells, experiment.floor, experiment.payloads)
    assert (part.server, part.rate, part.batch) == (server, 10.0, 1)
    assert part.latency_p50_ms == pytest.approx(latency)
    assert part.service_p50_ms == pytest.approx(service)
    assert part.compute_ms == pytest.approx(floor)
    assert part.encode_ms == pytest.approx(encode)
    assert part.overhead_ms == pytest.approx(overhead)
    assert part.queueing_ms == pytest.approx(queueing)
    assert part.notes == ()


def test_missing_floor_and_encode_are_named_not_guessed(results: ResultsBuilder) -> None:
    results.cell(rate=10, latency_ms=5.0)
    experiment = read_results(results.root)
    (part,) = decompose(experiment.cells, experiment.floor, experiment.payloads)
    assert part.compute_ms is None and part.overhead_ms is None and part.encode_ms is None
    assert part.notes == (
        "no encode time for batch 1 in payloads.json",
        "no torch floor for batch 1 in floor.json",
    )


def test_a_server_protocol_without_usable_cells_is_listed_with_a_note(results: ResultsBuilder) -> None:
    results.cell(rate=10, latency_ms=5.0, valid=False, invalid_reasons=["lateness"])
    experiment = read_results(results.root)
    (part,) = decompose(experiment.cells, experiment.floor, experiment.payloads)
    assert (part.latency_p50_ms, part.overhead_ms) == (None, None)
    assert "no usable cell" in part.notes[0]
