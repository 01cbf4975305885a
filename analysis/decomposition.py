"""Where the time goes: split latency per server x protocol at the lowest measured load.

Method (medians, in ms, from the lowest-rate usable open-loop cell of each server x protocol; the
smallest batch when several were measured):
- encode: time to serialize one request body in this protocol (`payloads.json`). Our generator
  encodes before the load starts, so it is *not* inside the measured latency; a real client pays it
  per request, so it is shown on top.
- model compute floor: the same model's predict time in-process at that batch (`floor.json`;
  TensorFlow for TF Serving, PyTorch for TorchServe, NumPy for Triton), no server involved.
- transport + server overhead = service time p50 - compute floor: network stack, HTTP/gRPC
  framing, body parsing and tensor decoding, server queues and scheduling.
- queueing (client side) = latency p50 - service time p50: time between a request's scheduled
  and its actual send, i.e. waiting in the generator at that load.
Medians do not add exactly, so the parts sum to latency p50 only approximately.

`server_decomposition` splits each cell's *mean* client latency with the servers' own counters
(`analysis.server_side`): server queue + server inference + the rest (transport, parsing, front end).
Means from counters are means: a percentile cannot be decomposed this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis._files import FloorTime, PayloadCost
from analysis.repetitions import CellSummary
from inferload_formats import strict_fields

FRAMEWORK_OF_SERVER = {"tfserving": "tensorflow", "torchserve": "torch", "triton": "numpy"}


@strict_fields
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
    """The mean over usable repetitions of their `attribute` ("latency_ms" | "service_ms") median."""
    medians = [getattr(r.measured, attribute).p50 for r in cell.runs if r.usable]
    values = [m for m in medians if m is not None]
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


@strict_fields
@dataclass(frozen=True)
class ServerDecomposition:
    """One cell's mean client latency split by the server's own counters (means over usable repetitions).

    client latency (mean, ok requests) = server queue + server inference + rest, where rest is
    transport, HTTP/gRPC framing, body parsing, the server's front end and the generator's lateness.
    All parts are *means*: the server exports sums and counts, so a p99 cannot be split this way.
    """

    cell_id: str
    server: str
    protocol: str
    server_config_name: str
    batch: int
    rate: float | None
    concurrency: int | None
    repetitions: int  # repetitions with server-side figures behind the means
    usable: bool  # False: no usable repetition, shown from excluded ones (never in verdicts)
    client_latency_mean_ms: float | None
    server_queue_ms: float | None
    server_inference_ms: float | None
    rest_ms: float | None
    server_request_ms: float | None
    server_requests: float | None  # counted by the server between the bracketing samples
    client_ok: float | None  # ok responses the client received between the same samples
    cpu_seconds: float | None
    cpu_seconds_per_ok: float | None
    sources: dict[str, str]  # figure -> where it came from
    notes: tuple[str, ...]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def server_decomposition(cells: Sequence[CellSummary]) -> list[ServerDecomposition]:
    """One row per cell whose runs have server-side figures, in cell order: from its usable repetitions,
    or, when it has none, from its excluded ones (marked, so a busy machine still shows the split)."""
    rows = []
    for cell in cells:
        measured = [r for r in cell.runs if r.server_side is not None and r.stats is not None]
        runs = [r for r in measured if r.usable] or measured
        if not runs:
            continue
        sides = [r.server_side for r in runs if r.server_side is not None]
        client = _mean([r.measured.latency_ms.mean for r in runs])
        queue = _mean([s.queue_ms for s in sides])
        inference = _mean([s.inference_ms for s in sides])
        notes = list(dict.fromkeys(note for s in sides for note in s.notes))
        usable = any(r.usable for r in runs)
        if not usable:
            notes.insert(0, f"excluded from verdicts ({cell.exclusion_label}): shown for the split only")
        rest = None
        if client is not None and inference is not None:
            rest = client - inference - (queue or 0.0)
            if queue is None:
                notes.append("no server queue figure: any queueing before the run is inside 'rest'")
        last = sides[-1]
        rows.append(
            ServerDecomposition(
                cell_id=runs[0].cell_id,
                server=cell.key.server,
                protocol=cell.key.protocol,
                server_config_name=cell.key.server_config_name,
                batch=cell.key.batch,
                rate=cell.key.rate,
                concurrency=cell.key.concurrency,
                repetitions=len(runs),
                usable=usable,
                client_latency_mean_ms=client,
                server_queue_ms=queue,
                server_inference_ms=inference,
                rest_ms=rest,
                server_request_ms=_mean([s.request_ms for s in sides]),
                server_requests=_mean([s.server_requests for s in sides]),
                client_ok=_mean([float(s.client_ok) if s.client_ok is not None else None for s in sides]),
                cpu_seconds=_mean([s.cpu_seconds for s in sides]),
                cpu_seconds_per_ok=_mean([s.cpu_seconds_per_ok for s in sides]),
                sources={
                    "client latency": "request records (done − scheduled, ok, in the window)",
                    "queue, inference, server request": f"{last.kind}: {last.metrics_source}",
                    "CPU": last.cpu_source,
                },
                notes=tuple(notes),
            )
        )
    return rows
