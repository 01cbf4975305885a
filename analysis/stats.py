"""Per-run statistics: latency, service time, throughput, goodput, failures and the SLO check.

Definitions (all from raw records, see `analysis.percentiles` for the percentile method):
- The steady window is `measure_start_ns .. measure_end_ns` from the records' header. A request
  belongs to the window when it was *scheduled* inside it (warm-up and drain are excluded).
- Latency = done - scheduled (free of coordinated omission); service time = done - sent;
  lateness = sent - scheduled (the generator's own delay). Percentiles of latency and service
  time are over `ok` requests; failures are counted as rates, never as latencies.
- Error rate = (error + timeout) / scheduled; drop rate = dropped / scheduled.
- Throughput = `ok` responses *completed* inside the window per second of window (a saturated
  server cannot look faster than it answered); goodput = the same, counting only `ok` requests
  whose latency met the SLO bound. Predictions/s = throughput x batch.
- Met SLO: the SLO percentile of latency <= the bound, error + drop rate <= `max_failure_rate`,
  at least one `ok` request in the window, and enough `ok` requests for the SLO percentile
  (`percentiles.min_samples`: 368 for p99). With fewer, the run's status is "too few requests": not
  met, and missed only when the data prove it (the percentile's lower confidence bound is above the
  SLO bound, or errors + drops exceed the limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis._files import ServerUsage, read_cell, read_load, read_server_usage
from analysis._records import read_requests
from analysis.errors import ResultsError
from analysis.intervals import slice_rate_interval
from analysis.percentiles import Percentiles, QuantileInterval, quantile_interval
from analysis.server_side import ServerSide, server_side_of_run
from inferload.manifest import CellMachine
from loadtest import RunData, SchemaError

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Slo:
    """The latency target a configuration must meet: `percentile` of latency <= `latency_ms`."""

    percentile: float = 99.0
    latency_ms: float = 100.0
    max_failure_rate: float = 0.01

    def describe(self) -> str:
        return (
            f"p{self.percentile:g} latency <= {self.latency_ms:g} ms and "
            f"errors + drops <= {self.max_failure_rate:.0%}"
        )

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Slo:
        raw = manifest.get("slo") or {}
        default = cls()
        return cls(
            percentile=float(raw.get("percentile", default.percentile)),
            latency_ms=float(raw.get("latency_ms", default.latency_ms)),
            max_failure_rate=float(raw.get("max_failure_rate", default.max_failure_rate)),
        )


@dataclass(frozen=True)
class RunSummary:
    """Everything the reports need about one load run (one cell repetition)."""

    run_dir: str
    cell_id: str
    server: str
    protocol: str
    mode: str
    rate: float | None
    concurrency: int | None
    batch: int
    server_config_name: str
    repetition: int
    status: str
    error: str | None
    window_s: float
    scheduled: int
    ok: int
    errors: int
    dropped: int
    latency_ms: Percentiles
    service_ms: Percentiles
    lateness_ms: Percentiles
    throughput_rps: float
    goodput_rps: float
    predictions_per_s: float
    error_rate: float
    drop_rate: float
    slo_latency_ms: float | None
    met_slo: bool
    slo_misses: tuple[str, ...]
    generator_valid: bool | None
    invalid_reasons: tuple[str, ...]
    server_usage: tuple[ServerUsage, ...] = field(default=())
    server_kind: str | None = None
    # "met" | "missed" | "too few requests" (for the SLO percentile); met_slo is status == "met"
    slo_status: str = "missed"
    slo_note: str | None = None  # why the status is "too few requests"
    slo_interval: QuantileInterval | None = None  # the SLO percentile with its order-statistic interval
    p99_interval: QuantileInterval | None = None
    throughput_interval: tuple[float, float] | None = None  # batch means over slices of the window
    server_side: ServerSide | None = None  # the server's own counters over the window
    repeat_share: float | None = None  # share of requests that reused an input (None: uniform pool)
    # early stopping's outcome from load.json (`loadtest.EarlyStopOutcome`, as its owner dumps it):
    # measured_s, reason (rule | cap | interrupted), at_stop (the interval then); None: no rule
    early_stop: dict[str, Any] | None = None
    early_stop_note: str | None = None  # the same in words: "40.0 s, stopped by the rule (p99 ...)"
    # where the cell ran in the matrix's rounds (cell.json v2; None: an older cell or a bare load run)
    round: int | None = None
    position: int | None = None
    arm: str | None = None  # an A/A line's arm, "a" or "b" (None: the line has no twin)
    machine: CellMachine | None = None  # the machine while the cell's load ran (cell.json `machine`)

    @property
    def usable(self) -> bool:
        """Counts towards verdicts: the cell finished and its generator kept the schedule."""
        return self.status == "done" and self.generator_valid is True

    @property
    def exclusion_label(self) -> str | None:
        """A few words on why the run is excluded (None when it is usable)."""
        if self.status != "done":
            return f"cell {self.status}"
        if self.generator_valid is False:
            return "generator invalid"
        if self.generator_valid is None:
            return "generator health unknown"
        return None

    @property
    def exclusion_reasons(self) -> tuple[str, ...]:
        reasons: list[str] = []
        if self.status != "done":
            reasons.append(f"cell {self.status}" + (f": {self.error}" if self.error else ""))
        if self.generator_valid is not True:
            reasons.extend(self.invalid_reasons or ("generator marked the run invalid",))
        return tuple(reasons)


def measurement_window(headers: Sequence[dict[str, Any]], records: pd.DataFrame) -> tuple[int, int]:
    """The steady window spanning all streams, as the records' owner defines it (`RunData.window`)."""
    return RunData(list(headers), records).window


def summarize_records(
    records: pd.DataFrame,
    window: tuple[int, int],
    slo: Slo,
    *,
    batch: int | None = None,
) -> dict[str, Any]:
    """The statistics of one run's records within `window` (a dict of `RunSummary` fields)."""
    start, end = window
    window_s = (end - start) / NS_PER_S
    scheduled = records[(records["scheduled_ns"] >= start) & (records["scheduled_ns"] < end)]
    status = scheduled["status"]
    ok = scheduled[status == "ok"]
    dropped = int((status == "dropped").sum())
    errors = int(status.isin(["error", "timeout"]).sum())
    # latency_ms, service_ms, lateness_ms: derived once, by the records' reader (loadtest.read_run)
    latency_ms = ok["latency_ms"].to_numpy(dtype=float)
    service_ms = ok["service_ms"].to_numpy(dtype=float)
    sent = scheduled[status != "dropped"]
    lateness_ms = sent["lateness_ms"].to_numpy(dtype=float)

    all_ok = records[records["status"] == "ok"]
    completed = all_ok[(all_ok["done_ns"] >= start) & (all_ok["done_ns"] < end)]
    completed_latency_ms = completed["latency_ms"].to_numpy(dtype=float)
    throughput = len(completed) / window_s
    goodput = int((completed_latency_ms <= slo.latency_ms).sum()) / window_s
    if batch is None:
        batch = int(records["batch"].iloc[0]) if len(records) else 1  # a records-only caller

    count = len(scheduled)
    error_rate = errors / count if count else 0.0
    drop_rate = dropped / count if count else 0.0
    slo_interval = quantile_interval(latency_ms, slo.percentile)
    slo_latency = slo_interval.value
    name = f"p{slo.percentile:g}"
    misses: list[str] = []
    if slo_latency is None:
        misses.append("no ok responses in the measurement window")
    elif slo_interval.enough and slo_latency > slo.latency_ms:
        misses.append(f"{name} {slo_latency:.1f} ms > {slo.latency_ms:g} ms")
    elif not slo_interval.enough and slo_interval.low is not None and slo_interval.low > slo.latency_ms:
        misses.append(
            f"{name} surely > {slo.latency_ms:g} ms: even its lower confidence bound is "
            f"{slo_interval.low:.1f} ms (only {slo_interval.n} ok requests)"
        )
    if error_rate + drop_rate > slo.max_failure_rate:
        misses.append(f"errors + drops {error_rate + drop_rate:.1%} > {slo.max_failure_rate:.0%}")
    note = None
    if not misses and not slo_interval.enough:
        note = too_few_note(slo_interval)
    status = "missed" if misses else ("too few requests" if note else "met")
    return {
        "window_s": window_s,
        "scheduled": count,
        "ok": len(ok),
        "errors": errors,
        "dropped": dropped,
        "latency_ms": Percentiles.of(latency_ms),
        "service_ms": Percentiles.of(service_ms),
        "lateness_ms": Percentiles.of(lateness_ms),
        "throughput_rps": throughput,
        "goodput_rps": goodput,
        "predictions_per_s": throughput * batch,
        "error_rate": error_rate,
        "drop_rate": drop_rate,
        "slo_latency_ms": slo_latency,
        "met_slo": status == "met",
        "slo_misses": tuple(misses),
        "slo_status": status,
        "slo_note": note,
        "slo_interval": slo_interval,
        "p99_interval": quantile_interval(latency_ms, 99.0),
        "throughput_interval": slice_rate_interval(completed["done_ns"].to_numpy(), window),
    }


def too_few_note(interval: QuantileInterval) -> str:
    """The report's words for a percentile that has too few samples to be reported."""
    return (
        f"too few requests for p{interval.p:g}: {interval.n} ok, "
        f"{interval.needed} needed for a {interval.confidence:.0%} interval"
    )


NO_LOAD_JSON = "no load.json: the generator's health is unknown"


def summarize_run(run_dir: Path | str, slo: Slo) -> RunSummary:
    """Read one run directory (records, `cell.json`, `load.json`, server metrics) and summarize it.

    What the run measured (server, protocol, load, batch, server kind) comes from one place, the
    records' headers (`loadtest.RunData.identity`); cell.json adds only the matrix's bookkeeping (cell
    id, server config name, repetition, how the cell ended), load.json the generator's verdict.
    """
    run_dir = Path(run_dir)
    run = read_requests(run_dir)
    cell = read_cell(run_dir)
    load = read_load(run_dir)
    try:
        identity = run.identity
    except SchemaError as exc:
        raise ResultsError(str(exc)) from exc
    window = run.window
    stats = summarize_records(run.records, window, slo, batch=identity.batch)
    summary = RunSummary(
        run_dir=str(run_dir),
        cell_id=cell.cell_id if cell else run_dir.name,
        server=identity.server,
        protocol=identity.protocol,
        mode=identity.mode,
        rate=identity.rate,
        concurrency=identity.concurrency,
        batch=identity.batch,
        server_config_name=cell.server_config_name if cell else "default",
        repetition=cell.repetition if cell else 0,
        repeat_share=identity.repeat_share,
        status=cell.status if cell else "done",
        error=cell.error if cell else None,
        generator_valid=load.valid if load else None,
        invalid_reasons=(() if load.valid else tuple(load.invalid_reasons)) if load else (NO_LOAD_JSON,),
        server_usage=tuple(read_server_usage(run_dir, *window)),
        server_kind=identity.server_kind,
        early_stop=load.early_stop.model_dump() if load and load.early_stop else None,
        early_stop_note=load.early_stop.describe() if load and load.early_stop else None,
        round=cell.round if cell else None,
        position=cell.position if cell else None,
        arm=cell.arm if cell else None,
        machine=cell.machine if cell else None,
        **stats,
    )
    server_side = server_side_of_run(run_dir, window, run.records, summary.server, summary.protocol)
    return replace(summary, server_side=server_side)
