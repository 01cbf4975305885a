"""Deployment views of the scaling study: server CPU per request by protocol, replicas, balancer, cache.

- CPU per request: the servers' CPU-seconds over the measuring window divided by the ok requests
  the client received in the same interval (`analysis.server_side`'s `cpu_seconds_per_ok`), and per
  prediction (÷ batch). With replicas, their CPU adds up (names `tfserving-1`, `tfserving-2`, ...);
  nginx's own CPU is reported apart. The verdict answers the study's claim that gRPC costs the server
  more as the rate grows: per server, gRPC against REST-binary and REST-JSON at every common rate,
  "more" or "less" only where the repetitions' ranges do not overlap.
- Scaling: max rate under the SLO and p99 against the replica count, per server x protocol x policy;
  efficiency = throughput at N / (N x throughput at 1), throughput being the throughput at the max
  rate under the SLO. The balancer's own latency: the same single replica with and without nginx.
- Cache: hit ratio, p50/p99 of hits and misses, max rate under the SLO against the repeat share.
  gRPC through nginx is never cached (nginx's cache is HTTP's): those cells show no hits by design.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from analysis._files import read_samples
from analysis._records import read_requests
from analysis.percentiles import reportable_percentile
from analysis.repetitions import CellSummary
from analysis.server_side import server_side
from analysis.stats import RunSummary
from analysis.verdicts import SweepVerdict
from inferload_formats import Manifest, MatrixEcho
from loadtest import RunData
from serving.metrics_file import ServerSample

CPU_SOURCES = {  # serving/monitor.py's CPU sources, as the table names them
    "psutil": "psutil, the server's process tree",
    "cgroup": "the container's cgroup",
    "docker-stats": "docker stats",
    "none": "none (external)",
}
CACHE_LIMITS = (
    "gRPC through nginx is not cached: nginx's proxy_cache serves HTTP responses, and grpc_pass has no "
    "cache, so gRPC cells measure the balancer only",
    "the cache keys on the whole body: an input that differs in one value is a miss",
    "each cell starts with an empty cache; a hit needs an earlier request with the same body to have "
    "completed (repeats of inputs still in flight miss)",
)


# ---------------------------------------------------------------- CPU per request


@dataclass(frozen=True)
class CpuCost:
    """Server CPU of one run per ok request and per prediction (ms), and the balancer's apart."""

    cpu_seconds: float
    ok: int
    replicas: int
    batch: int
    balancer_cpu_seconds: float | None = None

    @property
    def ms_per_ok(self) -> float | None:
        return 1000.0 * self.cpu_seconds / self.ok if self.ok else None

    @property
    def ms_per_prediction(self) -> float | None:
        per_ok = self.ms_per_ok
        return per_ok / self.batch if per_ok is not None else None

    @property
    def balancer_ms_per_ok(self) -> float | None:
        if self.balancer_cpu_seconds is None or not self.ok:
            return None
        return 1000.0 * self.balancer_cpu_seconds / self.ok


class RunFiles:
    """One run's records and server samples, each read once (through their owners) and only when asked."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    @cached_property
    def samples(self) -> list[ServerSample]:
        return read_samples(self.run_dir)

    @cached_property
    def run(self) -> RunData:
        return read_requests(self.run_dir)

    @cached_property
    def ok_done_ns(self) -> np.ndarray:
        frame = self.run.records
        return frame.loc[frame["status"] == "ok", "done_ns"].to_numpy(dtype=np.int64)


def cpu_cost(run: RunSummary, files: RunFiles | None = None) -> CpuCost | None:
    """The server CPU of one run per ok request (None without CPU samples or ok requests)."""
    if run.status != "done":
        return None
    files = files or RunFiles(run.run_dir)
    names = _replica_names(run, files.samples)
    if names == [run.key.server]:  # one server: H3's server-side figure, computed once there
        side = run.server_side
        if side is None or side.cpu_seconds is None or side.cpu_seconds_per_ok is None:
            return None
        ok = round(side.cpu_seconds / side.cpu_seconds_per_ok) if side.cpu_seconds_per_ok else 0
        balancer = _balancer_cpu(run, files)
        return CpuCost(side.cpu_seconds, ok, 1, run.key.batch, balancer)
    return _replicated_cost(run, names, files)


def _replica_names(run: RunSummary, samples: Sequence[ServerSample]) -> list[str]:
    names = sorted({s.server for s in samples
                    if s.server == run.key.server or s.server.startswith(run.key.server + "-")})
    return names or [run.key.server]


def _replicated_cost(run: RunSummary, names: Sequence[str], files: RunFiles) -> CpuCost | None:
    """Σ replicas' CPU over their brackets, per ok response received between the outermost samples."""
    samples, window, ok_done = files.samples, files.run.window, files.ok_done_ns
    total, starts, ends = 0.0, [], []
    for name in names:
        side = server_side(samples, window, ok_done, name, run.key.protocol)
        if side is None or side.cpu_seconds is None or side.cpu_span_s is None:
            return None
        total += side.cpu_seconds
        mine = sorted(s.t_ns for s in samples if s.server == name and s.cpu_seconds is not None)
        before = [t for t in mine if t <= window[0]]
        after = [t for t in mine if t >= window[1]]
        starts.append(before[-1] if before else mine[0])
        ends.append(after[0] if after else mine[-1])
    ok = int(((ok_done > min(starts)) & (ok_done <= max(ends))).sum())
    return CpuCost(total, ok, len(names), run.key.batch, _balancer_cpu(run, files))


def _balancer_cpu(run: RunSummary, files: RunFiles) -> float | None:
    if not any(s.server == "nginx" for s in files.samples):
        return None
    side = server_side(files.samples, files.run.window, files.ok_done_ns, "nginx", run.key.protocol)
    return side.cpu_seconds if side is not None else None


@dataclass(frozen=True)
class CpuRow:
    """One server x protocol x configuration x rate: CPU per request over its usable repetitions."""

    server: str
    protocol: str
    server_config_name: str
    batch: int
    rate: float
    ms_per_ok: tuple[float, ...]  # one per usable repetition
    ms_per_prediction: tuple[float, ...]
    balancer_ms_per_ok: tuple[float, ...]
    source: str = ""  # where the server's CPU time came from (psutil process tree, cgroup, ...)

    @property
    def mean_ms(self) -> float | None:
        return float(np.mean(self.ms_per_ok)) if self.ms_per_ok else None

    @property
    def range_ms(self) -> tuple[float, float] | None:
        return (min(self.ms_per_ok), max(self.ms_per_ok)) if self.ms_per_ok else None


def cpu_rows(cells: Iterable[CellSummary],
             files: Callable[[RunSummary], RunFiles] | None = None) -> list[CpuRow]:
    """CPU per request of every open-loop cell that has CPU samples."""
    files = files or (lambda run: RunFiles(run.run_dir))
    rows = []
    for cell in cells:
        if cell.key.mode != "open" or cell.key.rate is None:
            continue
        costs = [c for c in (cpu_cost(run, files(run)) for run in cell.runs if run.usable)
                 if c is not None and c.ms_per_ok is not None]
        if not costs:
            continue
        rows.append(CpuRow(
            server=cell.key.server, protocol=cell.key.protocol,
            server_config_name=cell.key.server_config_name,
            batch=cell.key.batch, rate=cell.key.rate,
            ms_per_ok=tuple(c.ms_per_ok for c in costs if c.ms_per_ok is not None),
            ms_per_prediction=tuple(c.ms_per_prediction for c in costs if c.ms_per_prediction is not None),
            balancer_ms_per_ok=tuple(
                c.balancer_ms_per_ok for c in costs if c.balancer_ms_per_ok is not None),
            source=", ".join(sorted({CPU_SOURCES.get(s, s) for s in (
                run.server_side.cpu_source for run in cell.runs if run.usable and run.server_side)})),
        ))
    return sorted(rows, key=lambda r: (r.server, r.server_config_name, r.batch, r.protocol, r.rate))


def _compare(a: CpuRow, b: CpuRow) -> str:
    """gRPC costs `more`, `less` or `about the same` (repetitions' ranges overlap; one each: no interval)."""
    ra, rb = a.range_ms, b.range_ms
    assert ra is not None and rb is not None
    if len(a.ms_per_ok) >= 2 and len(b.ms_per_ok) >= 2:
        if ra[0] > rb[1]:
            return "more"
        if ra[1] < rb[0]:
            return "less"
        return "about the same (repetitions overlap)"
    word = "more" if (a.mean_ms or 0) > (b.mean_ms or 0) else "less"
    return f"{word} (one repetition: no interval)"


def cpu_verdicts(rows: Sequence[CpuRow]) -> list[str]:
    """Per server (and config, batch): does gRPC cost the server more or less CPU per request than REST?"""
    lines = []
    by_line: dict[tuple[str, str, int], dict[str, dict[float, CpuRow]]] = defaultdict(
        lambda: defaultdict(dict))
    for row in rows:
        by_line[(row.server, row.server_config_name, row.batch)][row.protocol][row.rate] = row
    for (server, config, batch), protocols in sorted(by_line.items()):
        grpc = protocols.get("grpc", {})
        for rest in ("rest-binary", "rest-json"):
            other = protocols.get(rest, {})
            common = sorted(set(grpc) & set(other))
            if not common:
                continue
            parts = [f"{rate:g}/s {grpc[rate].mean_ms:.3g} vs {other[rate].mean_ms:.3g} "
                     f"({_compare(grpc[rate], other[rate])})" for rate in common]
            ratios = [(grpc[r].mean_ms or 0) / (other[r].mean_ms or 1) for r in common]
            trend = ""
            if len(common) >= 2:
                trend = (" — gRPC's share grows with the rate" if ratios[-1] > ratios[0] * 1.1 else
                         " — gRPC's share shrinks with the rate" if ratios[-1] < ratios[0] / 1.1 else
                         " — the ratio stays within 10 % as the rate grows")
            lines.append(f"{server} [{config}] batch {batch}, server CPU ms per request, gRPC vs {rest}: "
                         + "; ".join(parts) + trend)
    return lines


# ---------------------------------------------------------------- scaling and the balancer


@dataclass(frozen=True)
class Topo:
    """A server config's topology, from the manifest."""

    name: str
    replicas: int
    balancer: str
    policy: str
    cache: bool
    tls: bool = False  # the servers' own TLS or nginx's: the load reached this config over TLS

    @property
    def shape(self) -> tuple[int, str, str, bool]:
        """Everything but TLS: two configs of one shape differ only in whether TLS is on."""
        return (self.replicas, self.balancer, self.policy if self.balancer == "nginx" else "", self.cache)


def topologies(matrix: MatrixEcho | None) -> dict[str, Topo]:
    """Each server config's topology, from the matrix a manifest echoes (none for a bare load run)."""
    configs = matrix.server_configs if matrix is not None else ()
    return {config.name: Topo(config.name, config.replicas, config.balancer.kind, config.balancer.policy,
                              config.cache.kind == "nginx", config.tls or config.balancer.tls)
            for config in configs}


@dataclass(frozen=True)
class ScalingRow:
    server: str
    protocol: str
    policy: str
    batch: int
    replicas: int
    config: str
    max_rate_under_slo: float | None
    throughput_rps: float | None
    p99_at_max_ms: float | None
    efficiency: float | None  # throughput at N / (N x throughput at 1); None unless both lines saturated
    note: str | None = None  # why there is no efficiency


def scaling_rows(verdicts: Sequence[SweepVerdict], topo: dict[str, Topo]) -> list[ScalingRow]:
    """Per server x protocol x policy: the replica counts measured behind nginx (no cache, uniform load)."""
    lines: dict[tuple[str, str, str, int], dict[int, SweepVerdict]] = defaultdict(dict)
    for verdict in verdicts:
        t = topo.get(verdict.group.server_config_name)
        if t is None or t.balancer != "nginx" or t.cache or verdict.group.repeat_share is not None:
            continue
        line = (verdict.group.server, verdict.group.protocol, t.policy, verdict.group.batch)
        lines[line][t.replicas] = verdict
    # With one upstream the policy makes no difference: any single replica behind nginx is the base.
    singles = {(s, p, b): by_n[1] for (s, p, _, b), by_n in sorted(lines.items()) if 1 in by_n}
    rows = []
    for (server, protocol, policy, batch), by_n in sorted(lines.items()):
        one = by_n.get(1) or singles.get((server, protocol, batch))
        for n, verdict in sorted(by_n.items()):
            efficiency, note = _efficiency(n, verdict, one)
            rows.append(ScalingRow(server, protocol, policy, batch, n, verdict.group.server_config_name,
                                   verdict.max_rate_under_slo, verdict.throughput_at_max_rps,
                                   verdict.p99_at_max_ms, efficiency, note))
    return rows


def _efficiency(n: int, line: SweepVerdict, one: SweepVerdict | None) -> tuple[float | None, str | None]:
    """Throughput at N / (N x throughput at 1), only where both lines found their limit.

    A line whose every measured rate met the SLO was limited by the offered load, not by the servers:
    its throughput says nothing about capacity, and neither would a ratio built on it.
    """
    if one is None:
        return None, "no single replica behind nginx measured"
    for replicas, verdict in ((1, one), (n, line)):
        if verdict.first_miss_rate is None and verdict.excluded:
            return None, (f"{replicas} replica(s): no usable rate missed the SLO, and the higher ones were "
                          "excluded (generator-invalid or failed): the limit was not found here")
        if verdict.first_miss_rate is None:
            return None, (f"{replicas} replica(s) met the SLO at every rate measured: "
                          "extend the rates until a rate misses")
    if not one.throughput_at_max_rps or line.throughput_at_max_rps is None:
        return None, "no throughput at the max rate under the SLO"
    return line.throughput_at_max_rps / (n * one.throughput_at_max_rps), None


class _AddedLatency:
    """p50/p99 of a line with something added (nginx, TLS) minus the same line without it."""

    p50_without_ms: float | None
    p50_with_ms: float | None
    p99_without_ms: float | None
    p99_with_ms: float | None

    @property
    def added_p50_ms(self) -> float | None:
        return _minus(self.p50_with_ms, self.p50_without_ms)

    @property
    def added_p99_ms(self) -> float | None:
        return _minus(self.p99_with_ms, self.p99_without_ms)


@dataclass(frozen=True)
class BalancerCost(_AddedLatency):
    """The same single replica with and without nginx in front, at one rate both measured."""

    server: str
    protocol: str
    policy: str
    rate: float
    p50_without_ms: float | None
    p50_with_ms: float | None
    p99_without_ms: float | None
    p99_with_ms: float | None


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _same_load(cell: CellSummary) -> tuple[Any, ...]:
    key = cell.key
    return (key.server, key.protocol, key.batch, key.repeat_share, key.rate)


def balancer_costs(cells: Sequence[CellSummary], topo: dict[str, Topo]) -> list[BalancerCost]:
    """Δp50/Δp99 of one replica behind nginx (each policy) against one replica alone, per common rate."""
    single = {name: t for name, t in topo.items() if t.replicas == 1 and not t.cache and not t.tls}
    plain = {name for name, t in single.items() if t.balancer == "none"}
    fronted = {name: t for name, t in single.items() if t.balancer == "nginx"}
    alone: dict[tuple[str, str, int, float | None, float], CellSummary] = {}
    for cell in cells:
        if cell.key.server_config_name in plain and cell.key.rate is not None and cell.usable:
            alone[_same_load(cell)] = cell
    costs = []
    for cell in cells:
        t = fronted.get(cell.key.server_config_name)
        if t is None or cell.key.rate is None or not cell.usable:
            continue
        base = alone.get(_same_load(cell))
        if base is None:
            continue
        costs.append(BalancerCost(cell.key.server, cell.key.protocol, t.policy, cell.key.rate,
                                  base.p50_ms.mean, cell.p50_ms.mean, base.p99_ms.mean, cell.p99_ms.mean))
    return sorted(costs, key=lambda c: (c.server, c.protocol, c.policy, c.rate))


@dataclass(frozen=True)
class TlsCost(_AddedLatency):
    """The same line with and without TLS (two configs that differ only in it), at one rate both measured."""

    server: str
    protocol: str
    plain_config: str
    tls_config: str
    rate: float
    p50_without_ms: float | None
    p50_with_ms: float | None
    p99_without_ms: float | None
    p99_with_ms: float | None


def tls_costs(cells: Sequence[CellSummary], topo: dict[str, Topo]) -> list[TlsCost]:
    """Δp50/Δp99 of each TLS config against the plaintext config of the same shape, per common rate
    (means over repetitions; the report's per-cell intervals say how far apart they are)."""
    plain_of = {}
    for name, t in topo.items():
        twins = [other for other, o in topo.items() if not o.tls and o.shape == t.shape]
        if t.tls and twins:
            plain_of[name] = twins[0]
    by_load = {(c.key.server_config_name, *_same_load(c)): c
               for c in cells if c.usable and c.key.rate is not None}
    costs = []
    for cell in cells:
        plain = plain_of.get(cell.key.server_config_name)
        if plain is None or cell.key.rate is None or not cell.usable:
            continue
        base = by_load.get((plain, *_same_load(cell)))
        if base is None:
            continue
        costs.append(TlsCost(cell.key.server, cell.key.protocol, plain, cell.key.server_config_name,
                             cell.key.rate, base.p50_ms.mean, cell.p50_ms.mean, base.p99_ms.mean,
                             cell.p99_ms.mean))
    return sorted(costs, key=lambda c: (c.server, c.protocol, c.tls_config, c.rate))


# ---------------------------------------------------------------- cache


@dataclass(frozen=True)
class CacheRow:
    """One cell's cache figures, over its usable repetitions' steady windows.

    Percentiles of hits and of misses are given only with the samples the reports' rule asks for
    (p99: 368), else None.
    """

    server: str
    protocol: str
    server_config_name: str
    repeat_share: float | None
    rate: float
    ok: int
    hits: int
    hit_p50_ms: float | None
    hit_p99_ms: float | None
    miss_p50_ms: float | None
    miss_p99_ms: float | None

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / self.ok if self.ok else None


def cache_rows(cells: Sequence[CellSummary], topo: dict[str, Topo],
               files: Callable[[RunSummary], RunFiles] | None = None) -> list[CacheRow]:
    files = files or (lambda run: RunFiles(run.run_dir))
    rows = []
    for cell in cells:
        t = topo.get(cell.key.server_config_name)
        if t is None or not t.cache or cell.key.rate is None:
            continue
        hit, miss = [], []
        for run in cell.runs:
            if not run.usable:
                continue
            frame = files(run).run.records
            steady = frame[frame["in_window"] & (frame["status"] == "ok")]
            hit.append(steady.loc[steady["cache"] == "hit", "latency_ms"].to_numpy())
            miss.append(steady.loc[steady["cache"] != "hit", "latency_ms"].to_numpy())
        if not hit:
            continue
        hits, misses = np.concatenate(hit), np.concatenate(miss)
        rows.append(CacheRow(cell.key.server, cell.key.protocol, cell.key.server_config_name,
                             cell.key.repeat_share, cell.key.rate, int(hits.size + misses.size),
                             int(hits.size),
                             reportable_percentile(hits, 50), reportable_percentile(hits, 99),
                             reportable_percentile(misses, 50), reportable_percentile(misses, 99)))
    return sorted(rows, key=lambda r: (r.server, r.protocol, r.server_config_name, r.repeat_share or 0,
                                       r.rate))


def max_rate_by_share(verdicts: Sequence[SweepVerdict]) -> list[tuple[str, str, str, float, float | None]]:
    """(server, protocol, config, repeat share, max rate under the SLO) for lines with a repeat share."""
    return sorted((v.group.server, v.group.protocol, v.group.server_config_name, v.group.repeat_share,
                   v.max_rate_under_slo) for v in verdicts if v.group.repeat_share is not None)


# ---------------------------------------------------------------- the report's section


@dataclass(frozen=True)
class TopologyReport:
    cpu: tuple[CpuRow, ...]
    cpu_verdicts: tuple[str, ...]
    scaling: tuple[ScalingRow, ...]
    balancer: tuple[BalancerCost, ...]
    cache: tuple[CacheRow, ...]
    max_rate_by_share: tuple[tuple[str, str, str, float, float | None], ...]
    cache_limits: tuple[str, ...]
    tls: tuple[TlsCost, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.cpu or self.scaling or self.balancer or self.cache or self.tls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_per_request": [
                {"server": r.server, "protocol": r.protocol, "server_config_name": r.server_config_name,
                 "batch": r.batch, "rate": r.rate, "cpu_ms_per_ok_mean": r.mean_ms,
                 "cpu_ms_per_ok": list(r.ms_per_ok), "cpu_ms_per_prediction": list(r.ms_per_prediction),
                 "balancer_cpu_ms_per_ok": list(r.balancer_ms_per_ok)} for r in self.cpu],
            "cpu_verdicts": list(self.cpu_verdicts),
            "scaling": [r.__dict__ for r in self.scaling],
            "balancer_added_latency": [
                {**c.__dict__, "added_p50_ms": c.added_p50_ms, "added_p99_ms": c.added_p99_ms}
                for c in self.balancer],
            "cache": [{**r.__dict__, "hit_ratio": r.hit_ratio} for r in self.cache],
            "tls_added_latency": [
                {**c.__dict__, "added_p50_ms": c.added_p50_ms, "added_p99_ms": c.added_p99_ms}
                for c in self.tls],
            "max_rate_by_repeat_share": [
                {"server": s, "protocol": p, "server_config_name": c, "repeat_share": share,
                 "max_rate_under_slo": m}
                for s, p, c, share, m in self.max_rate_by_share],
            "cache_limits": list(self.cache_limits) if self.cache else [],
        }


def topology_report(manifest: Manifest | None, cells: Sequence[CellSummary],
                    verdicts: Sequence[SweepVerdict]) -> TopologyReport:
    topo = topologies(manifest.matrix if manifest is not None else None)
    opened: dict[str, RunFiles] = {}  # each run's files read once for the whole section

    def files(run: RunSummary) -> RunFiles:
        return opened.setdefault(run.run_dir, RunFiles(run.run_dir))

    rows = cpu_rows(cells, files)
    cache = cache_rows(cells, topo, files)
    return TopologyReport(
        cpu=tuple(rows),
        cpu_verdicts=tuple(cpu_verdicts(rows)),
        scaling=tuple(scaling_rows(verdicts, topo)),
        balancer=tuple(balancer_costs(cells, topo)),
        cache=tuple(cache),
        max_rate_by_share=tuple(max_rate_by_share(verdicts)),
        cache_limits=CACHE_LIMITS,
        tls=tuple(tls_costs(cells, topo)),
    )
