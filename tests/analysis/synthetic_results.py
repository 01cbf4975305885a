"""Synthetic results directories for the analysis tests, written through each format's own definition.

No servers: the builder writes `manifest.json`, `cells/<id>/{requests.jsonl, cell.json, load.json,
payloads.json, server_metrics.jsonl}` and `floor.json` with hand-chosen timings, so every expected
number in the tests can be worked out by hand. Every file goes through the writer of the package that
owns its format (loadtest's `RecordWriter`/`RunHeader`/`LoadSummary`/`write_payloads_json`,
inferload_formats' `write_manifest`/`write_cell`, models.floor's `write_floor`, serving.metrics_file's
header and `ServerSample`), so renaming a field there breaks these tests, never a user's results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inferload_formats import Manifest, write_cell, write_manifest
from loadtest import (
    EncodingRecord,
    LoadSettings,
    LoadSummary,
    RecordWriter,
    RequestRecord,
    RunHeader,
    read_run,
)
from loadtest._summary import LOAD_FILE, summarize
from models.calibration import CALIBRATION_FILE, CalibrationWriter, PredictTiming, new_header
from models.floor import FloorRecord, write_floor
from serving.metrics_file import METRICS_FILE, MonitoredServer, ServerSample
from serving.metrics_file import header as metrics_header

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
WINDOW_START_NS = 1_000 * NS_PER_S  # an arbitrary monotonic-clock origin
# generated cells hold at least this many requests: more than p99 needs to be reported (368 at 95 %)
MIN_REQUESTS = 400
FEATURES = 1024


@dataclass
class Request:
    """One synthetic request, timed relative to the window start (ms)."""

    at_ms: float
    latency_ms: float
    status: str = "ok"
    lateness_ms: float = 0.0


def record(seq: int, request: Request, *, server: str, protocol: str, batch: int) -> RequestRecord:
    scheduled = WINDOW_START_NS + round(request.at_ms * NS_PER_MS)
    if request.status == "dropped":
        sent = done = scheduled
    else:
        sent = scheduled + round(request.lateness_ms * NS_PER_MS)
        done = scheduled + round(request.latency_ms * NS_PER_MS)
    return RequestRecord(
        seq=seq,
        stream=0,
        server=server,
        protocol=protocol,
        batch=batch,
        scheduled_ns=scheduled,
        sent_ns=sent,
        done_ns=done,
        bytes_out=100,
        bytes_in=50,
        status=request.status,  # type: ignore[arg-type]
        code=200 if request.status == "ok" else (0 if request.status == "dropped" else 500),
        error=None if request.status in ("ok", "dropped") else request.status,
    )


def evenly(
    count: int, latency_ms: float, *, window_s: float = 10.0, status: str = "ok", offset_ms: float = 0.0
) -> list[Request]:
    """`count` requests spread evenly over the window, all with one latency."""
    step = window_s * 1000 / count
    return [Request(offset_ms + i * step, latency_ms, status) for i in range(count)]


def poisson_lognormal(
    seed: int, rate: float, window_s: float, *, median_ms: float, sigma: float, scale: float = 1.0
) -> list[Request]:
    """Poisson arrivals at `rate` over the window with independent lognormal(ln median, sigma) latencies x
    `scale`, seeded: an open-loop cell of a lightly loaded server."""
    import numpy as np

    rng = np.random.default_rng(seed)
    count = int(rng.poisson(rate * window_s))
    times = np.sort(rng.uniform(0.0, window_s * 1000.0, count))
    latencies = rng.lognormal(np.log(median_ms), sigma, count) * scale
    return [Request(float(t), float(latency)) for t, latency in zip(times, latencies, strict=True)]


def lognormal(
    seed: int, count: int, *, median_ms: float, sigma: float, window_s: float = 10.0, scale: float = 1.0
) -> list[Request]:
    """`count` evenly spaced requests whose latencies are lognormal(ln median, sigma) x `scale`, seeded:
    a run with a known spread (its true p-th percentile is median * exp(sigma * z_p) * scale)."""
    import numpy as np

    latencies = np.random.default_rng(seed).lognormal(np.log(median_ms), sigma, count) * scale
    times = evenly(count, 0.0, window_s=window_s)
    return [Request(r.at_ms, float(latency)) for r, latency in zip(times, latencies, strict=True)]


def load_settings(
    run: str,
    *,
    server: str,
    protocol: str,
    batch: int,
    window_s: float,
    rate: float | None,
    concurrency: int | None,
    server_kind: str | None = None,
) -> LoadSettings:
    """The settings a load run of this cell would have had (open loop at `rate`, else closed loop)."""
    return LoadSettings(
        server=server,  # type: ignore[arg-type]
        protocol=protocol,  # type: ignore[arg-type]
        mode="open" if rate is not None else "closed",
        rate=rate,
        concurrency=None if rate is not None else (concurrency or 1),
        duration_s=window_s,
        batch=batch,
        features=FEATURES,
        run=run,
        server_kind=server_kind,
    )


def write_run(
    run_dir: Path,
    requests: Sequence[Request],
    *,
    server: str = "torchserve",
    protocol: str = "grpc",
    batch: int = 1,
    window_s: float = 10.0,
    rate: float | None = None,
    concurrency: int | None = None,
    server_kind: str | None = None,
    schema_version: int | None = None,
    valid: bool | None = True,
    invalid_reasons: Sequence[str] = (),
) -> Path:
    """A load run directory: requests.jsonl (header + records) and, unless `valid` is None, load.json
    with the generator's verdict set to `valid` / `invalid_reasons`. `schema_version` writes a records
    header that claims another version (for the refusal tests)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        run_dir.name, server=server, protocol=protocol, batch=batch, window_s=window_s, rate=rate,
        concurrency=concurrency, server_kind=server_kind,
    )
    version = {} if schema_version is None else {"schema_version": schema_version}
    header = RunHeader(
        run=run_dir.name,
        stream=0,
        settings={**settings.resolved(), "streams": 1},
        measure_start_ns=WINDOW_START_NS,
        measure_end_ns=WINDOW_START_NS + round(window_s * NS_PER_S),
        server_kind=server_kind,
        **version,  # type: ignore[arg-type]
    )
    with RecordWriter(run_dir / "requests.jsonl", header) as writer:
        for i, r in enumerate(requests):
            writer.add(record(i, r, server=server, protocol=protocol, batch=batch))
    if valid is not None and schema_version is None:
        measured = summarize(settings, read_run(run_dir), cpu_percent=[10.0], interrupted=False)
        verdict = {"valid": valid, "invalid_reasons": list(invalid_reasons)}
        summary = LoadSummary.model_validate({**measured.model_dump(by_alias=True), **verdict})
        summary.write(run_dir / LOAD_FILE)
    return run_dir


class ResultsBuilder:
    """Writes one experiment results directory, cell by cell."""

    def __init__(self, root: Path, *, slo_ms: float = 100.0, tfserving_kind: str = "tfs-compat",
                 slo_percentile: float = 99.0) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        write_manifest(
            root / "manifest.json",
            Manifest(
                name=root.name,
                experiment={},
                slo={"percentile": slo_percentile, "latency_ms": slo_ms},  # type: ignore[arg-type]
                model={"classes": 64, "features": FEATURES, "seed": 0},  # type: ignore[arg-type]
                seeds={"experiment": 0, "model": 0},
                tfserving_kind=tfserving_kind,
                versions={"python": "3.11", "torchserve": "0.12.0"},
                machine={"cpus": 2},
                artifacts="artifacts/64x1024-s0",
                created_at="2026-11-23T11:00:00Z",
            ),
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
        round_index: int | None = None,
        arm: str | None = None,
        machine: dict[str, Any] | None = None,
    ) -> Path:
        """One cell repetition. Without `requests`: evenly spaced requests at `rate` (100/s closed loop)
        with one latency, over a window long enough for `MIN_REQUESTS` (at least 10 s). `payloads` and
        `metrics` entries give the fields under test; the rest are filled in with plausible values."""
        load = f"r{rate:g}" if rate is not None else f"c{concurrency}"
        twin = "-armb" if arm == "b" else ""
        cell_id = f"{server}-{protocol}-b{batch}-{config}-{load}-rep{repetition}{twin}"
        run_dir = self.root / "cells" / cell_id
        if requests is None:
            window_s = window_s or max(10.0, MIN_REQUESTS / (rate or 100.0))
            count = round((rate or 100.0) * window_s)
            lateness = latency_ms - service_ms if service_ms is not None else 0.0
            requests = [
                Request(r.at_ms, r.latency_ms, r.status, lateness)
                for r in evenly(count, latency_ms, window_s=window_s)
            ]
        kind = tfserving_kind if server == "tfserving" else None
        write_run(
            run_dir,
            requests,
            server=server,
            protocol=protocol,
            batch=batch,
            rate=rate,
            concurrency=concurrency,
            server_kind=kind,
            valid=valid,
            invalid_reasons=invalid_reasons,
            window_s=window_s or 10.0,
        )
        write_cell(
            run_dir,
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
                "tfserving_kind": kind,
                "round": round_index,
                "position": None if round_index is None else 0,
                "arm": arm,
                "machine": machine,
            },
        )
        if payloads:
            from loadtest import write_payloads_json

            write_payloads_json(run_dir / "payloads.json", [encoding(**entry) for entry in payloads])
        if metrics:
            write_metrics(run_dir, metrics)
        return run_dir

    def calibration(self, predict_ms: Sequence[float], *, batch: int = 1, every_s: float = 60.0) -> None:
        """calibration.jsonl as the probe writes it (models.calibration's writer): one calibration point
        per entry of `predict_ms` (the model's in-process predict at `batch`), `every_s` apart."""
        model = {"classes": 64, "features": FEATURES, "seed": 0}
        header = new_header(framework="torch", threads=1, model=model, batches=[batch], cpus=None,
                            probe_interval_s=0.5)
        with CalibrationWriter(self.root / CALIBRATION_FILE, header) as writer:
            for i, ms in enumerate(predict_ms):
                label = "before round 0" if i == 0 else f"after round {i - 1}"
                writer.add_point(label, WINDOW_START_NS + round(i * every_s * NS_PER_S), 0.5,
                                 [PredictTiming(batch, ms, ms * 1.1, 30)], 10.0)

    def floor(self, records: Sequence[dict[str, Any]]) -> None:
        """floor.json; each entry gives framework, batch and median_ms (p90_ms and n are filled in)."""
        write_floor(
            [FloorRecord(**{"p90_ms": entry["median_ms"], "n": 20, **entry}) for entry in records],
            self.root / "floor.json",
        )


def encoding(**fields: Any) -> EncodingRecord:
    """A payloads.json entry: the given fields over plausible defaults (a misspelt one is refused)."""
    defaults = {"features": FEATURES, "encode_ms_min": fields.get("encode_ms_median", 0.0), "repeats": 5,
                "encoder": "protobuf" if fields.get("protocol") == "grpc" else "orjson"}
    return EncodingRecord(**{**defaults, **fields})


def write_metrics(run_dir: Path, samples: Sequence[dict[str, Any]]) -> Path:
    """server_metrics.jsonl as serving.monitor writes it: its header, then one ServerSample per entry
    (the given fields over a psutil sample's defaults). Header entries among `samples` are skipped."""
    lines = [metrics_header([MonitoredServer("torchserve", "torchserve", None)], 0.5)]
    for entry in samples:
        if "schema" in entry:
            continue
        server = entry.get("server", "torchserve")
        defaults = {"kind": server, "source": "psutil", "cpu_percent": None, "cpu_seconds": None,
                    "rss_bytes": None}
        lines.append(asdict(ServerSample(**{**defaults, **entry})))
    path = run_dir / METRICS_FILE
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
