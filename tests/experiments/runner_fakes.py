"""Fake heavy stages for unit tests of the runner's bookkeeping (no servers, no load, no torch).

`FakeStages` writes a records file per cell and can interrupt, crash the server, fail the load or the
start; it answers warm-up chunks with steady (or, `unstable`, alternating) service times. Its
calibration writes a real calibration.jsonl through the format's own writer (models/calibration.py),
one point per `calibrate` and a probe burst per cell, so the runner's reading of it is exercised.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferload.experiments import ModelSpec, ServerConfig
from models.calibration import CalibrationWriter, PredictTiming, ProbeSample, new_header


@dataclass
class FakeServers:
    server: str
    running: bool = True
    stopped: int = 0
    tfserving_kind: str = "tfs-compat"

    def alive(self, server: str) -> bool:
        return self.running and server == self.server

    def down(self) -> None:
        self.running = False
        self.stopped += 1

    def monitored(self) -> list[Any]:
        return []


class FakeCalibration:
    """Writes calibration.jsonl as the probe would: `labels` are the calibrations asked for, in order."""

    def __init__(self, path: Path) -> None:
        self.path: Path | None = path
        self.labels: list[str] = []
        header = new_header(framework="torch", threads=1, model={"classes": 4, "features": 8, "seed": 0},
                            batches=[1], cpus=None, probe_interval_s=0.5)
        self.writer = CalibrationWriter(path, header)

    def calibrate(self, label: str) -> int | None:
        self.labels.append(label)
        timings = [PredictTiming(1, 0.02, 0.03, 30)]
        point = self.writer.add_point(label, time.monotonic_ns(), 0.01, timings, 9.0)
        return point.index

    @contextlib.contextmanager
    def probing(self) -> Iterator[None]:
        yield
        self.writer.add_probe(ProbeSample(t_ns=time.monotonic_ns() - 1000, batch=1, ms=0.025, calls=3))

    def close(self) -> None:
        self.writer.close()


@dataclass
class FakeStages:
    """Writes a records file per cell; can interrupt, crash the server, or fail the load for a cell."""

    interrupt_at: str | None = None
    kill_server_at: str | None = None
    raise_at: str | None = None
    fail_start: str | None = None
    unstable: bool = False  # warm-up chunks alternate 1 ms and 2 ms windows: never stable
    started: list[tuple[str, str]] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    warmup_chunks: list[str] = field(default_factory=list)
    servers: list[FakeServers] = field(default_factory=list)
    calibrations: list[FakeCalibration] = field(default_factory=list)
    exports: int = 0

    def prepare_artifacts(self, spec: ModelSpec, root: Path) -> None:
        self.exports += 1

    def measure_floor(self, root: Path, batches: tuple[int, ...], out_path: Path) -> None:
        out_path.write_text(json.dumps({"records": []}))

    def start_server(self, server: str, config: ServerConfig, *, tfserving_kind: str | None,
                     ports: Any, artifacts: Path, state_dir: Path,
                     cpus: tuple[int, ...] | None = None) -> FakeServers:
        if self.fail_start == server:
            raise RuntimeError(f"{server} did not become healthy in time (log: {state_dir}/log)")
        self.started.append((config.name, server))
        self.servers.append(FakeServers(server))
        return self.servers[-1]

    def server_kind(self, servers: Any, server: str) -> str | None:
        return servers.tfserving_kind if server == "tfserving" else None

    @contextlib.contextmanager
    def monitor(self, servers: Any, out_path: Path) -> Iterator[None]:
        out_path.write_text('{"cpu_percent": 1.0}\n')
        yield

    def check_server_settings(self, config: ServerConfig, tfserving_kind: str | None) -> None:
        pass

    def make_load_settings(self, **fields: Any) -> dict[str, Any]:
        return fields

    def calibration(self, artifacts: Path, batches: tuple[int, ...], out_path: Path,
                    *args: Any) -> FakeCalibration:
        self.calibrations.append(FakeCalibration(out_path))
        return self.calibrations[-1]

    def warmup_chunk(self, settings: dict[str, Any], out_dir: Path) -> list[tuple[int, float]]:
        """`duration_s` of closed-loop requests, 10 a second: 1 ms each, or alternating windows of 1 and
        2 ms (`unstable`)."""
        assert settings["mode"] == "closed" and settings["concurrency"] == 1
        self.warmup_chunks.append(settings["run"])
        count = int(settings["duration_s"] * 10)
        return [(k * 100_000_000, 2.0 if self.unstable and (k // 5) % 2 else 1.0) for k in range(count)]

    def run_load(self, settings: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        cell_id = settings["run"]
        self.loads.append(cell_id)
        (out_dir / "requests.jsonl").write_text('{"schema": "inferload.requests"}\n{"seq": 0}\n')
        if cell_id == self.interrupt_at:
            raise KeyboardInterrupt
        if cell_id == self.kill_server_at:
            next(s for s in reversed(self.servers) if s.server == settings["server"]).running = False
            return {"sent": 1}
        if cell_id == self.raise_at:
            raise ConnectionError("connection reset by peer")
        return {"sent": 10}
