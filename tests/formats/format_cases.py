"""One case per results file format: how its owner writes a small file and reads it back.

The tests of this folder run every case through the same checks (round trip, a newer version refused
with both versions named, a misspelt field refused), so a format without a strict reader fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from analysis.report_model import build_model
from analysis.summary import SUMMARY_FILE, read_summary, summary_document
from inferload_formats import Manifest, read_cell, read_manifest, write_cell, write_manifest
from loadtest import (
    EncodingRecord,
    LoadSettings,
    LoadSummary,
    RecordWriter,
    RequestRecord,
    RunHeader,
    read_header,
    read_payloads_json,
    read_records,
    read_run,
    write_payloads_json,
)
from loadtest._summary import summarize
from models.artifacts import ModelJson
from models.calibration import CalibrationWriter, PredictTiming, ProbeSample, new_header, read_calibration
from models.floor import FloorRecord, read_floor, write_floor
from serving.metrics_file import MonitoredServer, ServerSample, header, read_server_samples

S = 1_000_000_000
SETTINGS = LoadSettings(server="torchserve", protocol="grpc", rate=2.0, duration_s=1.0, features=8)


@dataclass(frozen=True)
class Case:
    """`write(dir)` writes the file and returns (path, what was written); `read(path)` reads it back.
    `field` is a field name the written file holds (misspelt by the test); `reads` the readable
    version(s) as the refusal words them."""

    name: str
    write: Callable[[Path], tuple[Path, Any]]
    read: Callable[[Path], Any]
    field: str
    reads: str

    def __str__(self) -> str:
        return self.name


def _records(directory: Path) -> tuple[Path, Any]:
    path = directory / "requests.0.jsonl"
    run_header = RunHeader(run="r", stream=0, settings={**SETTINGS.resolved(), "streams": 1},
                           measure_start_ns=0, measure_end_ns=S, server_kind="torchserve")
    records = [
        RequestRecord(seq=k, stream=0, server="torchserve", protocol="grpc", batch=1, scheduled_ns=k * S // 2,
                      sent_ns=k * S // 2 + 10, done_ns=k * S // 2 + 5_000_000, bytes_out=40, bytes_in=20,
                      status="ok", code=0, error=None)
        for k in range(2)
    ]
    with RecordWriter(path, run_header) as writer:
        for r in records:
            writer.add(r)
    return path, (run_header, records)


def _read_records(path: Path) -> Any:
    return read_header(path), list(read_records(path))


def _load(directory: Path) -> tuple[Path, Any]:
    _records(directory)
    summary = summarize(SETTINGS, read_run(directory), cpu_percent=[3.0], interrupted=False)
    return summary.write(directory / "load.json"), summary


def _payloads(directory: Path) -> tuple[Path, Any]:
    records = [EncodingRecord(server="tfserving", protocol="grpc", batch=1, features=8, body_bytes=70,
                              encode_ms_median=0.02, encode_ms_min=0.01, repeats=3, encoder="protobuf")]
    return write_payloads_json(directory / "payloads.json", records), records


def _floor(directory: Path) -> tuple[Path, Any]:
    records = [FloorRecord(framework="torch", batch=1, median_ms=0.2, p90_ms=0.3, n=20)]
    return write_floor(records, directory / "floor.json"), records


def _cell(directory: Path) -> tuple[Path, Any]:
    record = write_cell(directory, {
        "cell_id": "torchserve-grpc-b1-default-r2-rep0", "server": "torchserve", "protocol": "grpc",
        "mode": "open", "rate": 2.0, "concurrency": None, "batch": 1, "server_config": {},
        "server_config_name": "default", "repetition": 0, "status": "done", "error": None,
        "round": 3, "position": 1, "arm": "b",
        "machine": {"window_ns": [S, 3 * S], "cpu_count": 2, "steal_share": 0.01, "load_average_1m": 1.5,
                    "other_cpu_cores": 0.2,
                    "calibration": {"index": 2, "label": "after round 2", "seconds_away": 4.0, "batch": 1,
                                    "predict_ms": 3.1, "bandwidth_gb_s": 9.5},
                    "probe": {"batch": 1, "median_ms": 3.3, "p90_ms": 4.0, "n": 12}},
    })
    return directory / "cell.json", record


def _read_cell(path: Path) -> Any:
    return read_cell(path.parent)


def _manifest(directory: Path) -> tuple[Path, Any]:
    manifest = Manifest(
        name="x", experiment={}, slo={"percentile": 99.0, "latency_ms": 100.0},  # type: ignore[arg-type]
        model={"classes": 4, "features": 8, "seed": 0},  # type: ignore[arg-type]
        seeds={"experiment": 0, "model": 0}, tfserving_kind="tfs-compat", versions={"python": "3.11"},
        machine={"cpu_count_logical": 2}, artifacts="artifacts/4x8-s0",
        created_at="2026-11-30T22:00:00+00:00",
        schedule={"seed": 7, "isolation": "restart", "arms": 2},  # type: ignore[arg-type]
        rounds=[{"round": 0, "repetition": 0, "server_config_name": "default", "kind": "levels",  # type: ignore[list-item]
                 "level": 40.0, "order": ["torchserve-grpc-b1-default", "tfserving-grpc-b1-default"],
                 "calibration_before": 0, "calibration_after": 1}],
        warmups=[{"line": "torchserve-grpc-b1-default", "server": "torchserve", "protocol": "grpc",  # type: ignore[list-item]
                  "batch": 1, "server_config_name": "default", "repetition": 0,
                  "started_at": "2026-11-30T22:00:01+00:00", "rule": "3 windows within 10 %",
                  "windows_ms": [9.0, 3.1, 3.0, 3.2], "window_requests": [20, 20, 20, 20], "seconds": 1.5,
                  "stable": True}],
    )
    path = directory / "manifest.json"
    return path, write_manifest(path, manifest)


def _server_metrics(directory: Path) -> tuple[Path, Any]:
    samples = [
        ServerSample(t_ns=k * S, server="torchserve", kind="torchserve", source="psutil",
                     cpu_percent=None if k == 0 else 50.0, cpu_seconds=1.5 * k, rss_bytes=1000,
                     metrics={"ts_inference_requests_total": float(k)})
        for k in range(2)
    ]
    opening = header([MonitoredServer("torchserve", "torchserve", None, pid=1)], 0.5)
    lines = [opening] + [asdict(s) for s in samples]
    path = directory / "server_metrics.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path, samples


def _model_json(directory: Path) -> tuple[Path, Any]:
    document = ModelJson(name="linear", classes=4, features=8, seed=0, versions={"numpy": "2.4.6"},
                         handler_sha256="0" * 64, created_at="2026-11-30T22:00:00+00:00")
    return document.write(directory / "model.json"), document


def _calibration(directory: Path) -> tuple[Path, Any]:
    path = directory / "calibration.jsonl"
    header = new_header(framework="torch", threads=1, model={"classes": 4, "features": 8, "seed": 0},
                        batches=[1], cpus=[0], probe_interval_s=0.5)
    with CalibrationWriter(path, header) as writer:
        point = writer.add_point("before round 0", S, 0.4, [PredictTiming(1, 0.02, 0.03, 30)], 9.5)
        writer.add_probe(ProbeSample(t_ns=2 * S, batch=1, ms=0.021, calls=3))
    return path, (header, (point,), (ProbeSample(t_ns=2 * S, batch=1, ms=0.021, calls=3),))


def _read_calibration(path: Path) -> Any:
    log = read_calibration(path)
    return log.header, log.points, log.probes


def _summary(directory: Path) -> tuple[Path, Any]:
    """summary.json of a report on one load run: the typed document, as the report writes it."""
    _load(directory)
    document = summary_document(build_model(directory))
    return document.write(directory / SUMMARY_FILE), document


CASES = [
    Case("requests.jsonl", _records, _read_records, "bytes_out", "version 1 or 2"),
    Case("load.json", _load, LoadSummary.read, "achieved_send_rate", "version 1 or 2"),
    Case("payloads.json", _payloads, read_payloads_json, "encode_ms_median", "version 1"),
    Case("floor.json", _floor, read_floor, "median_ms", "version 1"),
    Case("cell.json", _cell, _read_cell, "server_config_name", "version 1 or 2"),
    Case("manifest.json", _manifest, read_manifest, "tfserving_kind", "version 1 or 2"),
    Case("server_metrics.jsonl", _server_metrics, read_server_samples, "cpu_seconds", "version 1"),
    Case("model.json", _model_json, ModelJson.read, "handler_sha256", "version 1"),
    Case("calibration.jsonl", _calibration, _read_calibration, "bandwidth_gb_s", "version 1"),
    Case("summary.json", _summary, read_summary, "tfserving_label", "version 7"),
]
