"""LoadSummary (load.json): did the generator keep its schedule, and what did it send?

Why a validity verdict: a generator that falls behind closes the loop by accident and makes the
server look better than it is. Like LoadGen's "Result is VALID/INVALID", every run says whether
it can be reported as a server result, and why not.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from inferload_formats import Document

from ._early_stop import EarlyStopOutcome
from ._percentiles import percentile
from ._schema import RunData, Status
from ._settings import LoadSettings

LOAD_FILE = "load.json"
LOAD_SCHEMA: Final = "inferload.load"
LOAD_SCHEMA_VERSION = 2  # load.json's own version; 2 added `early_stop` (1 is still read: no early stop)
LOAD_READABLE_VERSIONS = (1, 2)
RATE_SHORTFALL_LIMIT = 0.05  # achieved send rate more than 5 % below target: invalid
CPU_SATURATED_PERCENT = 95.0  # one generator process at ~one full core: it cannot keep up


LOST_SILENCE_MIN_S = 1.0  # a stream silent this long (and >= LOST_SILENCE_ARRIVALS gaps) while others ran
LOST_SILENCE_ARRIVALS = 20.0  # P(no Poisson arrival in 20 mean gaps) = e^-20: silence means the sender died


class StreamHealth(BaseModel):
    """One records stream (one load process or Locust user): which host sent it, and how it went."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream: int
    host: str
    pid: int | None
    rate: float | None  # this stream's share of the target rate (open loop)
    arrivals: int  # in the measuring window, dropped included
    sent: int
    ok: int
    lateness_p99_ms: float | None
    last_scheduled_s: float | None  # seconds after the run's first scheduled arrival
    lost: bool  # stopped sending long before the other streams: its process or host died


class LoadSummary(Document):
    """Generator health and counts of one load run; written to load.json."""

    READABLE = LOAD_READABLE_VERSIONS

    schema_: Literal["inferload.load"] = Field(default=LOAD_SCHEMA, alias="schema")
    schema_version: int = LOAD_SCHEMA_VERSION
    run: str
    server: str
    protocol: str
    mode: str
    batch: int
    server_kind: str | None
    processes: int
    target_rate: float | None
    concurrency: int | None
    warmup_s: float
    duration_s: float
    window_s: float
    achieved_arrival_rate: float
    achieved_send_rate: float
    ok_rate: float
    counts: dict[str, int]
    counts_total: dict[str, int]
    lateness_ms: dict[str, float | None]
    generator_cpu_percent: list[float]
    generator_cpu_percent_total: float
    cpus: list[int] | None = None  # the CPU set the load processes were pinned to (None: unpinned)
    cpus_applied: list[list[int]] = Field(default_factory=list)  # per process, as the kernel reported
    streams: list[StreamHealth] = Field(default_factory=list)  # which host sent what
    hosts: dict[str, dict[str, Any]] = Field(default_factory=dict)  # the streams' counts per host
    lost_workers: list[str] = Field(default_factory=list)  # "host pid N: streams ... silent from t s"
    interrupted: bool
    valid: bool
    invalid_reasons: list[str]
    settings: dict[str, Any]
    # the stopping rule's outcome (measured window, why it ended, the interval then); None: no rule
    early_stop: EarlyStopOutcome | None = None


def _percentile(values: np.ndarray, q: float) -> float | None:
    """Nearest rank, the method of every percentile inferload reports (loadtest._percentiles)."""
    return percentile(values, q)


def stream_health(data: RunData) -> list[StreamHealth]:
    """Per stream: host, counts, lateness, and whether it fell silent while the others went on.

    A live Poisson stream at rate r goes `g` seconds without an arrival with probability e^(-r g);
    a silence of max(1 s, 20 / r) before the last arrival of the run is therefore a dead sender.
    """
    records = data.records
    if len(records) == 0:
        first_ns = end_ns = 0
    else:
        first_ns, end_ns = int(records["scheduled_ns"].min()), int(records["scheduled_ns"].max())
    health = []
    for header in data.headers:
        stream = header.stream
        own = records[records["stream"] == stream]
        window = own[own["in_window"]]
        sent = window[window["status"] != "dropped"]
        lateness = sent["lateness_ms"].to_numpy(dtype=float)
        rate = header.rate
        last_ns = int(own["scheduled_ns"].max()) if len(own) else None
        silence_s = (end_ns - (last_ns if last_ns is not None else first_ns)) / 1e9
        limit_s = max(LOST_SILENCE_MIN_S, LOST_SILENCE_ARRIVALS / rate) if rate else math.inf
        health.append(
            StreamHealth(
                stream=stream,
                host=header.hostname,
                pid=header.pid,
                rate=rate,
                arrivals=len(window),
                sent=len(sent),
                ok=int((window["status"] == "ok").sum()),
                lateness_p99_ms=_percentile(lateness, 99),
                last_scheduled_s=(last_ns - first_ns) / 1e9 if last_ns is not None else None,
                lost=len(data.headers) > 1 and silence_s > limit_s,
            )
        )
    return health


def _per_host(streams: list[StreamHealth]) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = {}
    for s in streams:
        entry = hosts.setdefault(s.host, {"streams": [], "rate": 0.0, "arrivals": 0, "sent": 0, "ok": 0})
        entry["streams"].append(s.stream)
        entry["rate"] += s.rate or 0.0
        entry["arrivals"] += s.arrivals
        entry["sent"] += s.sent
        entry["ok"] += s.ok
    return hosts


def _lost_workers(streams: list[StreamHealth]) -> list[str]:
    """Lost streams grouped by the process that sent them (a Locust worker runs several users)."""
    by_process: dict[tuple[str, int | None], list[StreamHealth]] = {}
    for s in streams:
        if s.lost:
            by_process.setdefault((s.host, s.pid), []).append(s)
    return [
        f"host {host} pid {pid}: stream(s) {', '.join(str(s.stream) for s in lost)} stopped sending "
        f"{max(s.last_scheduled_s or 0.0 for s in lost):.1f} s into the run while the other streams went on"
        for (host, pid), lost in by_process.items()
    ]


def summarize(
    settings: LoadSettings,
    data: RunData,
    *,
    cpu_percent: list[float],
    interrupted: bool,
    cpus_applied: list[list[int]] | None = None,
    early_stop: EarlyStopOutcome | None = None,
) -> LoadSummary:
    """Compute the summary of a finished (or interrupted) run from its records."""
    records = data.records
    window_s = data.window_s
    in_window = records[records["in_window"]]
    statuses: tuple[Status, ...] = get_args(Status)
    counts: dict[str, int] = {s: int((in_window["status"] == s).sum()) for s in statuses}
    counts_total: dict[str, int] = {s: int((records["status"] == s).sum()) for s in statuses}
    sent = in_window[in_window["status"] != "dropped"]
    lateness = sent["lateness_ms"].to_numpy(dtype=float)
    lateness_ms = {
        "p50": _percentile(lateness, 50),
        "p99": _percentile(lateness, 99),
        "max": float(lateness.max()) if lateness.size else None,
    }
    arrivals = len(in_window)
    achieved_arrival_rate = arrivals / window_s if window_s > 0 else 0.0
    achieved_send_rate = len(sent) / window_s if window_s > 0 else 0.0
    reasons: list[str] = []
    if interrupted:
        reasons.append("the run was interrupted before the end of its window")
    p99 = lateness_ms["p99"]
    if p99 is not None and p99 > settings.lateness_p99_limit_ms:
        reasons.append(
            f"generator lateness p99 {p99:.2f} ms is above the limit {settings.lateness_p99_limit_ms} ms: "
            "the generator could not keep its schedule (lower the rate or add --processes)"
        )
    if settings.mode == "open" and settings.rate and not interrupted:
        expected = settings.rate * window_s
        # The generator's duty is the arrival schedule. Arrivals dropped at the in-flight bound were
        # scheduled on time: they say the *server* is overloaded (failures against the SLO), not that
        # the generator fell behind. Poisson counts fluctuate by sqrt(n): flag only shortfalls beyond
        # 5 % AND beyond 3 sigma.
        shortfall = expected - arrivals
        if arrivals < (1 - RATE_SHORTFALL_LIMIT) * expected and shortfall > 3 * math.sqrt(max(expected, 1)):
            reasons.append(
                f"achieved arrival rate {achieved_arrival_rate:.1f}/s is more than "
                f"{RATE_SHORTFALL_LIMIT:.0%} below the target {settings.rate:g}/s: "
                "the generator could not keep its schedule (lower the rate or add --processes)"
            )
    saturated = [p for p in cpu_percent if p >= CPU_SATURATED_PERCENT]
    if saturated:
        reasons.append(
            f"generator CPU saturated ({', '.join(f'{p:.0f}%' for p in saturated)} of one core): "
            "its timings are not trustworthy; add --processes or lower the rate"
        )
    if arrivals == 0:
        reasons.append("no arrival in the measuring window")
    streams = stream_health(data)
    lost = _lost_workers(streams)
    if lost:
        reasons.append(
            f"lost {len(lost)} load worker(s) during the run (their records up to then are kept): "
            + "; ".join(lost)
        )
    return LoadSummary(
        run=settings.run,
        server=settings.server,
        protocol=settings.protocol,
        mode=settings.mode,
        batch=settings.batch,
        server_kind=settings.server_kind,
        processes=settings.processes,
        target_rate=settings.rate,
        concurrency=settings.concurrency,
        warmup_s=settings.warmup_s,
        duration_s=settings.duration_s,
        window_s=window_s,
        achieved_arrival_rate=achieved_arrival_rate,
        achieved_send_rate=achieved_send_rate,
        ok_rate=counts["ok"] / window_s if window_s > 0 else 0.0,
        counts=counts,
        counts_total=counts_total,
        lateness_ms=lateness_ms,
        generator_cpu_percent=cpu_percent,
        generator_cpu_percent_total=float(sum(cpu_percent)),
        cpus=list(settings.cpus) if settings.cpus is not None else None,
        cpus_applied=cpus_applied or [],
        streams=streams,
        hosts=_per_host(streams),
        lost_workers=lost,
        interrupted=interrupted,
        valid=not reasons,
        invalid_reasons=reasons,
        settings=settings.resolved(),
        early_stop=early_stop,
    )
