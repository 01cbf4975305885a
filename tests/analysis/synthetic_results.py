"""Synthetic results directories for the analysis tests, written exactly as docs/architecture.md documents.

No servers: the builder writes `manifest.json`, `cells/<id>/{requests.jsonl, cell.json, load.json,
payloads.json, server_metrics.jsonl}` and `floor.json` with hand-chosen timings, so every expected
number in the tests can be worked out by hand.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
WINDOW_START_NS = 1_000 * NS_PER_S  # an arbitrary monotonic-clock origin
# generated cells hold at least this many requests: more than p99 needs to be reported (368 at 95 %)
MIN_REQUESTS = 400


@dataclass
class Request:
    """One synthetic request, timed relative to the window start (ms)."""

    at_ms: float
    latency_ms: float
    status: str = "ok"
    lateness_ms: float = 0.0


def record(seq: int, request: Request, *, server: str, protocol: str, batch: int) -> dict[str, Any]:
    scheduled = WINDOW_START_NS + round(request.at_ms * NS_PER_MS)
    if request.status == "dropped":
        sent = done = scheduled
    else:
        sent = scheduled + round(request.lateness_ms * NS_PER_MS)
        done = scheduled + round(request.latency_ms * NS_PER_MS)
    return {
        "seq": seq,
        "stream": 0,
        "server": server,
        "protocol": protocol,
        "batch": batch,
        "scheduled_ns": scheduled,
        "sent_ns": sent,
        "done_ns": done,
        "bytes_out": 100,
        "bytes_in": 50,
        "status": request.status,
        "code": 200 if request.status == "ok" else (0 if request.status == "dropped" else 500),
        "error": None if request.status in ("ok", "dropped") else request.status,
    }


def evenly(
    count: int, latency_ms: float, *, window_s: float = 10.0, status: str = "ok", offset_ms: float = 0.0
) -> list[Request]:
    """`count` requests spread evenly over the window, all with one latency."""
    step = window_s * 1000 / count
    return [Request(offset_ms + i * step, latency_ms, status) for i in range(count)]


def lognormal(
    seed: int, count: int, *, median_ms: float, sigma: float, window_s: float = 10.0, scale: float = 1.0
) -> list[Request]:
    """`count` evenly spaced requests whose latencies are lognormal(ln median, sigma) x `scale`, seeded:
    a run with a known spread (its true p-th percentile is median * exp(sigma * z_p) * scale)."""
    import numpy as np

    latencies = np.random.default_rng(seed).lognormal(np.log(median_ms), sigma, count) * scale
    times = evenly(count, 0.0, window_s=window_s)
    return [Request(r.at_ms, float(latency)) for r, latency in zip(times, latencies, strict=True)]


def write_run(
    run_dir: Path,
    requests: Sequence[Request],
    *,
    server: str = "torchserve",
    protocol: str = "grpc",
    batch: int = 1,
    window_s: float = 10.0,
    schema_version: int = 1,
    valid: bool | None = True,
    invalid_reasons: Sequence[str] = (),
) -> Path:
    """A load run directory: requests.jsonl (header + records) and load.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    header = {
        "schema": "inferload.requests",
        "schema_version": schema_version,
        "run": run_dir.name,
        "stream": 0,
        "settings": {"server": server, "protocol": protocol, "batch": batch},
        "measure_start_ns": WINDOW_START_NS,
        "measure_end_ns": WINDOW_START_NS + round(window_s * NS_PER_S),
    }
    lines = [json.dumps(header)] + [
        json.dumps(record(i, r, server=server, protocol=protocol, batch=batch))
        for i, r in enumerate(requests)
    ]
    (run_dir / "requests.jsonl").write_text("\n".join(lines) + "\n")
    if valid is not None:
        (run_dir / "load.json").write_text(
            json.dumps(
                {
                    "schema": "inferload.load",
                    "schema_version": 1,
                    "server": server,
                    "protocol": protocol,
                    "batch": batch,
                    "valid": valid,
                    "invalid_reasons": list(invalid_reasons),
                }
            )
        )
    return run_dir


class ResultsBuilder:
    """Writes one experiment results directory, cell by cell."""

    def __init__(self, root: Path, *, slo_ms: float = 100.0, tfserving_kind: str = "tfs-compat") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "manifest.json").write_text(
            json.dumps(
                {
                    "schema": "inferload.experiment",
                    "schema_version": 1,
                    "name": root.name,
                    "experiment": {},
                    "slo": {"percentile": 99.0, "latency_ms": slo_ms},
                    "model": {"classes": 64, "features": 1024, "seed": 0},
                    "tfserving_kind": tfserving_kind,
                    "versions": {"python": "3.11", "torchserve": "0.12.0"},
                    "machine": {"cpus": 2},
                    "created_at": "2026-11-23T11:00:00Z",
                }
            )
        )

    def cell(
        self,
        *,
        server: str = "torchserve",
        protocol: str = "grpc",
        rate: float | None = 100.0,
        concurrency: int | None = None,
        batch: int = 1,
        config: str = "default",
        repetition: int = 0,
        latency_ms: float = 10.0,
        requests: Sequence[Request] | None = None,
        status: str = "done",
        valid: bool | None = True,
        invalid_reasons: Sequence[str] = (),
        service_ms: float | None = None,
        payloads: Sequence[dict[str, Any]] = (),
        metrics: Sequence[dict[str, Any]] = (),
        tfserving_kind: str = "tfs-compat",
        window_s: float | None = None,
    ) -> Path:
        """One cell repetition. Without `requests`: evenly spaced requests at `rate` (100/s closed loop)
        with one latency, over a window long enough for `MIN_REQUESTS` (at least 10 s)."""
        load = f"r{rate:g}" if rate is not None else f"c{concurrency}"
        cell_id = f"{server}-{protocol}-b{batch}-{config}-{load}-rep{repetition}"
        run_dir = self.root / "cells" / cell_id
        if requests is None:
            window_s = window_s or max(10.0, MIN_REQUESTS / (rate or 100.0))
            count = round((rate or 100.0) * window_s)
            lateness = latency_ms - service_ms if service_ms is not None else 0.0
            requests = [
                Request(r.at_ms, r.latency_ms, r.status, lateness)
                for r in evenly(count, latency_ms, window_s=window_s)
            ]
        write_run(
            run_dir,
            requests,
            server=server,
            protocol=protocol,
            batch=batch,
            valid=valid,
            invalid_reasons=invalid_reasons,
            window_s=window_s or 10.0,
        )
        (run_dir / "cell.json").write_text(
            json.dumps(
                {
                    "cell_id": cell_id,
                    "status": status,
                    "error": None if status == "done" else "server died",
                    "server": server,
                    "protocol": protocol,
                    "mode": "open" if rate is not None else "closed",
                    "rate": rate,
                    "concurrency": concurrency,
                    "batch": batch,
                    "server_config": {},
                    "server_config_name": config,
                    "repetition": repetition,
                    "tfserving_kind": tfserving_kind,
                }
            )
        )
        if payloads:
            (run_dir / "payloads.json").write_text(
                json.dumps(
                    {
                        "schema": "inferload.payloads",
                        "schema_version": 1,
                        "encodings": list(payloads),
                    }
                )
            )
        if metrics:
            (run_dir / "server_metrics.jsonl").write_text("\n".join(json.dumps(m) for m in metrics) + "\n")
        return run_dir

    def floor(self, records: Sequence[dict[str, Any]]) -> None:
        (self.root / "floor.json").write_text(
            json.dumps(
                {
                    "schema": "inferload.floor",
                    "schema_version": 1,
                    "records": list(records),
                }
            )
        )
