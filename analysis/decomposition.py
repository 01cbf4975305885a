"""Where the time goes: split latency per server x protocol at the lowest measured load.

Method (medians, in ms, from the lowest-rate usable open-loop cell of each server x protocol; the
smallest batch when several were measured):
- encode: time to serialize one request body in this protocol (`payloads.json`). Our generator
  encodes before the load starts, so it is *not* inside the measured latency; a real client pays it
  per request, so it is shown on top.
- model compute floor: the same model's predict time in-process at that batch (`floor.json`;
  TensorFlow for TF Serving, PyTorch for TorchServe), no server involved.
- transport + server overhead = service time p50 - compute floor: network stack, HTTP/gRPC
  framing, body parsing and tensor decoding, server queues and scheduling.
- queueing (client side) = latency p50 - service time p50: time between a request's scheduled
  and its actual send, i.e. waiting in the generator at that load.
Medians do not add exactly, so the parts sum to latency p50 only approximately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis._files import FloorTime, PayloadCost
from analysis.repetitions import CellSummary

FRAMEWORK_OF_SERVER = {"tfserving": "tensorflow", "torchserve": "torch"}


@dataclass(frozen=True)
class Decomposition:
    server: str
    protocol: str
    batch: int
    rate: float | None
    concurrency: int | None
    latency_p50_ms: float | None
    service_p50_ms: float | None
    encode_ms: float | None
    compute_ms: float | None
    queueing_ms: float | None
    overhead_ms: float | None
    notes: tuple[str, ...]


def _median(cell: CellSummary, attribute: str) -> float | None:
    values = [
        getattr(r, attribute).p50 for r in cell.runs if r.usable and getattr(r, attribute).p50 is not None
    ]
    return sum(values) / len(values) if values else None


def _lowest_load_cell(cells: Sequence[CellSummary]) -> CellSummary | None:
    usable = [c for c in cells if c.usable]
    open_loop = [c for c in usable if c.key.mode == "open" and c.key.rate is not None]
    if open_loop:
        return min(open_loop, key=lambda c: (c.key.rate or 0.0, c.key.batch, c.key.server_config_name))
    closed = [c for c in usable if c.key.mode == "closed"]
    if closed:
        return min(closed, key=lambda c: (c.key.concurrency or 0, c.key.batch, c.key.server_config_name))
    return None


def decompose(
    cells: Sequence[CellSummary],
    floor: Sequence[FloorTime],
    payloads: Sequence[PayloadCost],
) -> list[Decomposition]:
    """One decomposition per server x protocol (all parts None, with a note, when no cell is usable)."""
    lines: dict[tuple[str, str], list[CellSummary]] = {}
    for cell in cells:
        lines.setdefault((cell.key.server, cell.key.protocol), []).append(cell)
    results = []
    for (server, protocol), members in sorted(lines.items()):
        lowest = _lowest_load_cell(members)
        if lowest is None:
            batch = min(c.key.batch for c in members)
            results.append(
                Decomposition(
                    server,
                    protocol,
                    batch,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    ("no usable cell: every cell was excluded (see the excluded runs)",),
                )
            )
            continue
        cell = lowest
        notes: list[str] = []
        if cell.key.mode == "closed":
            notes.append(f"no usable open-loop cell: taken at closed-loop concurrency {cell.key.concurrency}")
        batch = cell.key.batch
        latency = _median(cell, "latency_ms")
        service = _median(cell, "service_ms")
        encode = next(
            (p.encode_ms for p in payloads if (p.server, p.protocol, p.batch) == (server, protocol, batch)),
            None,
        )
        if encode is None:
            notes.append(f"no encode time for batch {batch} in payloads.json")
        framework = FRAMEWORK_OF_SERVER.get(server, server)
        compute = next((f.p50_ms for f in floor if (f.framework, f.batch) == (framework, batch)), None)
        if compute is None:
            notes.append(f"no {framework} floor for batch {batch} in floor.json")
        queueing = latency - service if latency is not None and service is not None else None
        overhead = service - compute if service is not None and compute is not None else None
        results.append(
            Decomposition(
                server,
                protocol,
                batch,
                cell.key.rate,
                cell.key.concurrency,
                latency,
                service,
                encode,
                compute,
                queueing,
                overhead,
                tuple(notes),
            )
        )
    return results
