"""Per-run statistics: latency, service time, throughput, goodput, failures and the SLO check.

Definitions (all from raw records, see `analysis.percentiles` for the percentile method):
- The measuring window is the run's, as the records' owner defines it from the streams' headers
  (`loadtest.RunData.window`: where every stream's `measure_start_ns .. measure_end_ns` holds). A
  request belongs to it when it was *scheduled* inside it (`in_window`; warm-up and drain excluded).
- Latency = done - scheduled (free of coordinated omission); service time = done - sent;
  lateness = sent - scheduled (the generator's own delay). Percentiles of latency and service
  time are over `ok` requests; failures are counted as rates, never as latencies.
- Error rate = (error + timeout) / scheduled; drop rate = dropped / scheduled.
- Throughput = `ok` responses *completed* inside the window per second of window (a saturated
  server cannot look faster than it answered); goodput = the same, counting only `ok` requests
  whose latency met the SLO bound. Predictions/s = throughput x batch.
- Met SLO: the SLO percentile of latency <= the bound, error + drop rate <= `max_failure_rate`
  (`Slo.failures_exceed`),
  at least one `ok` request in the window, and enough `ok` requests for the SLO percentile
  (`percentiles.min_samples`: 368 for p99). With fewer, the run's status is "too few requests": not
  met, and missed only when the data prove it (the percentile's lower confidence bound is above the
  SLO bound, or errors + drops exceed the limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analysis._files import ServerUsage, read_cell, read_load, read_samples, server_usage
from analysis._records import read_requests
from analysis.distributions import slice_log_means
from analysis.errors import ResultsError
from analysis.intervals import slice_rate_interval
from analysis.keys import CellKey
from analysis.percentiles import Percentiles, QuantileInterval, window_quantile_interval
from analysis.server_side import ServerSide, server_side_of_run
from inferload_formats import CellMachine, SchemaError, Slo, strict_fields
from loadtest import EarlyStopOutcome, RunData

__all__ = ["NO_LOAD_JSON", "RunStats", "RunSummary", "Slo", "SloCheck", "judge", "summarize_records",
           "summarize_run", "too_few_note"]

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@strict_fields
@dataclass(frozen=True)
class SloCheck:
    """One run judged against the SLO (see the module docstring)."""

    status: str  # "met" | "missed" | "too few requests" (for the SLO percentile)
    misses: tuple[str, ...]  # why it missed (empty unless missed)
    note: str | None  # why the status is "too few requests"
    interval: QuantileInterval  # the SLO percentile with its order-statistic interval

    @property
    def met(self) -> bool:
        return self.status == "met"

    @property
    def latency_ms(self) -> float | None:
        """The SLO percentile of latency (None without ok requests)."""
        return self.interval.value


@strict_fields
@dataclass(frozen=True)
class RunStats:
    """What one run's records say, within the run's measuring window."""

    window_s: float
    scheduled: int
    ok: int
    errors: int  # error + timeout
    dropped: int
    latency_ms: Percentiles
    service_ms: Percentiles
    lateness_ms: Percentiles
    throughput_rps: float
    goodput_rps: float
    predictions_per_s: float
    error_rate: float
    drop_rate: float
    slo: SloCheck
    p99_interval: QuantileInterval
    throughput_interval: tuple[float, float] | None  # batch means over slices of the window
    # per time slice of the window, the mean log latency (ms) of its ok requests (the regression gate's
    # unit: analysis/distributions.py); empty without ok requests
    latency_slices: tuple[float, ...] = ()


@strict_fields
@dataclass(frozen=True)
class RunSummary:
    """Everything the reports need about one load run (one cell repetition): what it measured (`key`,
    from the records' headers, or the cell.json of a cell that left none), how the cell ended, the
    generator's verdict (load.json), and the statistics of its records (`stats`, None without any)."""

    run_dir: str
    cell_id: str
    key: CellKey
    repetition: int
    status: str  # the cell's: "done" | "failed" | "incomplete" (no cell.json: interrupted)
    error: str | None
    server_kind: str | None
    stats: RunStats | None  # None: the run left no records (failed before load, or interrupted)
    generator_valid: bool | None  # load.json's verdict; None: unknown (no load.json)
    invalid_reasons: tuple[str, ...]
    server_usage: tuple[ServerUsage, ...] = field(default=())
    server_side: ServerSide | None = None  # the server's own counters over the window
    early_stop: EarlyStopOutcome | None = None  # from load.json; None: the run had no stopping rule
    # where the cell ran in the matrix's rounds (cell.json v2; None: an older cell or a bare load run)
    round: int | None = None
    position: int | None = None
    arm: str | None = None  # an A/A line's arm, "a" or "b" (None: the line has no twin)
    machine: CellMachine | None = None  # the machine while the cell's load ran (cell.json `machine`)

    @property
    def usable(self) -> bool:
        """Counts towards verdicts: the cell finished, its generator kept the schedule, and it has records."""
        return self.status == "done" and self.generator_valid is True and self.stats is not None

    @property
    def measured(self) -> RunStats:
        """The run's statistics; only a run that left no records has none (ask `usable` first)."""
        if self.stats is None:
            raise ValueError(f"{self.cell_id}: the run left no records, so no statistics")
        return self.stats

    @property
    def exclusion_label(self) -> str | None:
        """A few words on why the run is excluded (None when it is usable)."""
        if self.status != "done":
            return f"cell {self.status}"
        if self.generator_valid is False:
            return "generator invalid"
        if self.generator_valid is None or self.stats is None:
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

    @property
    def early_stop_note(self) -> str | None:
        """How the stopping rule ended the run, in words ("40.0 s, stopped by the rule (p99 ...)")."""
        return self.early_stop.describe() if self.early_stop is not None else None


def summarize_records(run: RunData, slo: Slo, *, batch: int | None = None) -> RunStats:
    """The statistics of one run's records within its measuring window."""
    records = run.records
    window = start, end = run.window
    window_s = run.window_s
    scheduled = records[records["in_window"]]
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
    throughput = len(completed) / window_s if window_s > 0 else 0.0
    goodput = int((completed_latency_ms <= slo.latency_ms).sum()) / window_s if window_s > 0 else 0.0
    if batch is None:
        batch = int(records["batch"].iloc[0]) if len(records) else 1  # a records-only caller

    count = len(scheduled)
    error_rate = errors / count if count else 0.0
    drop_rate = dropped / count if count else 0.0
    # latencies in a queue are correlated: the intervals come from the window's own time slices
    ok_scheduled_ns = ok["scheduled_ns"].to_numpy(dtype=float)
    return RunStats(
        window_s=window_s,
        scheduled=count,
        ok=len(ok),
        errors=errors,
        dropped=dropped,
        latency_ms=Percentiles.of(latency_ms),
        service_ms=Percentiles.of(service_ms),
        lateness_ms=Percentiles.of(lateness_ms),
        throughput_rps=throughput,
        goodput_rps=goodput,
        predictions_per_s=throughput * batch,
        error_rate=error_rate,
        drop_rate=drop_rate,
        slo=judge(window_quantile_interval(latency_ms, ok_scheduled_ns, window, slo.percentile), error_rate,
                  drop_rate, slo),
        p99_interval=window_quantile_interval(latency_ms, ok_scheduled_ns, window, 99.0),
        throughput_interval=slice_rate_interval(completed["done_ns"].to_numpy(), window),
        latency_slices=slice_log_means(latency_ms, ok_scheduled_ns, window),
    )


def judge(interval: QuantileInterval, error_rate: float, drop_rate: float, slo: Slo) -> SloCheck:
    """A run's SLO check from its SLO percentile's interval and its failure rates (the module docstring)."""
    value = interval.value
    name = f"p{slo.percentile:g}"
    misses: list[str] = []
    if value is None:
        misses.append("no ok responses in the measurement window")
    elif interval.enough and value > slo.latency_ms:
        misses.append(f"{name} {value:.1f} ms > {slo.latency_ms:g} ms")
    elif not interval.enough and interval.low is not None and interval.low > slo.latency_ms:
        misses.append(
            f"{name} surely > {slo.latency_ms:g} ms: even its lower confidence bound is "
            f"{interval.low:.1f} ms (only {interval.n} ok requests)"
        )
    if slo.failures_exceed(error_rate, drop_rate):
        misses.append(f"errors + drops {error_rate + drop_rate:.1%} > {slo.max_failure_rate:.0%}")
    note = None
    if not misses and not interval.enough:
        note = too_few_note(interval)
    status = "missed" if misses else ("too few requests" if note else "met")
    return SloCheck(status=status, misses=tuple(misses), note=note, interval=interval)


def too_few_note(interval: QuantileInterval) -> str:
    """The report's words for a percentile that has too few samples to be reported."""
    dependence = interval.correlation
    if dependence is not None and dependence.inflation > 1.0 and interval.n >= (interval.needed or 0):
        return (
            f"too few requests for p{interval.p:g}: {interval.n} ok, but correlated (variance "
            f"x{dependence.inflation:.1f} over {dependence.slices} time slices): worth "
            f"{interval.effective_n:.0f} independent ones, {interval.needed} needed for a "
            f"{interval.confidence:.0%} interval; measure longer"
        )
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
    samples = read_samples(run_dir)  # server_metrics.jsonl, read once for both views of it
    key = CellKey(
        server=identity.server,
        protocol=identity.protocol,
        mode=identity.mode,
        rate=identity.rate,
        concurrency=identity.concurrency,
        batch=identity.batch,
        server_config_name=cell.server_config_name if cell else "default",
        repeat_share=identity.repeat_share,
        arm="b" if cell and cell.arm == "b" else "",  # arm a is the line itself, its twin a line apart
    )
    return RunSummary(
        run_dir=str(run_dir),
        cell_id=cell.cell_id if cell else run_dir.name,
        key=key,
        repetition=cell.repetition if cell else 0,
        status=cell.status if cell else "done",
        error=cell.error if cell else None,
        server_kind=identity.server_kind,
        stats=summarize_records(run, slo, batch=identity.batch),
        generator_valid=load.valid if load else None,
        invalid_reasons=(() if load.valid else tuple(load.invalid_reasons)) if load else (NO_LOAD_JSON,),
        server_usage=tuple(server_usage(samples, *window)),
        server_side=server_side_of_run(samples, window, run.records, key.server, key.protocol),
        early_stop=load.early_stop if load else None,
        round=cell.round if cell else None,
        position=cell.position if cell else None,
        arm=cell.arm if cell else None,
        machine=cell.machine if cell else None,
    )
