"""The report's figures, rendered with matplotlib (Agg) into base64 PNG data URIs for embedding.

Every function returns None when it has nothing to draw, so the report can say so instead of
showing an empty frame.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis._files import PayloadCost  # noqa: E402
from analysis.decomposition import Decomposition  # noqa: E402
from analysis.drift import MachineTimeline  # noqa: E402
from analysis.intervals import Estimate  # noqa: E402
from analysis.repetitions import CellSummary, GroupKey  # noqa: E402
from analysis.stats import Slo  # noqa: E402
from analysis.verdicts import BatchSweepPoint  # noqa: E402

PROTOCOL_COLORS = {"rest-json": "tab:orange", "rest-binary": "tab:green", "grpc": "tab:blue"}
SERVER_MARKERS = {"tfserving": "o", "torchserve": "s", "triton": "^"}
MIB = 1024 * 1024


def _plain_log_labels(axis: Axes, which: str = "y") -> None:
    """Label log axes 1, 2, 5, 10, 20, 50 ... instead of 10^1 and 6x10^1: readable at a glance."""
    target = axis.yaxis if which == "y" else axis.xaxis
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))


def _error_bars(estimates: Sequence[Estimate]) -> list[list[float]]:
    """matplotlib's asymmetric yerr from each estimate's interval (0 where an end is unknown)."""
    def gap(a: float | None, b: float | None) -> float:
        return max(a - b, 0.0) if a is not None and b is not None else 0.0

    return [[gap(e.value, e.low) for e in estimates], [gap(e.high, e.value) for e in estimates]]


def _to_data_uri(figure: Figure) -> str:
    if figure.get_layout_engine() is None:  # titles, suptitle and legends laid out clear of each other
        figure.set_layout_engine("constrained")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _line_label(group: GroupKey, groups: Sequence[GroupKey]) -> str:
    """Name a line by what differs between the lines of one panel."""
    parts = [group.protocol]
    if len({g.server_config_name for g in groups}) > 1:
        parts.append(f"[{group.server_config_name}]")
    if len({g.batch for g in groups}) > 1:
        parts.append(f"batch {group.batch}")
    return " ".join(parts)


def _open_lines(cells: Sequence[CellSummary]) -> dict[str, dict[GroupKey, list[CellSummary]]]:
    panels: dict[str, dict[GroupKey, list[CellSummary]]] = {}
    for cell in cells:
        if cell.key.mode == "open" and cell.key.rate is not None:
            panels.setdefault(cell.key.server, {}).setdefault(cell.key.group, []).append(cell)
    return panels


def latency_vs_load(cells: Sequence[CellSummary], slo: Slo) -> str | None:
    panels = _open_lines(cells)
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False, sharey=True)
    for axis, (server, lines) in zip(axes[0], sorted(panels.items()), strict=True):
        for group, members in sorted(lines.items()):
            members = sorted(members, key=lambda c: c.key.rate or 0.0)
            usable = [c for c in members if c.usable and c.p99.value is not None]
            color = PROTOCOL_COLORS.get(group.protocol)
            label = _line_label(group, list(lines))
            rates = [c.key.rate for c in usable]
            axis.errorbar(
                rates,
                [c.p99.value for c in usable],
                yerr=_error_bars([c.p99 for c in usable]),
                fmt="-o",
                color=color,
                capsize=3,
                label=f"{label} p99 (95 % interval)",
            )
            axis.plot(
                rates, [c.p50_ms.mean for c in usable], "--", color=color, alpha=0.7, label=f"{label} p50"
            )
            for cell in (c for c in members if not c.usable):
                measured = [r.stats.latency_ms.p99 for r in cell.runs
                            if r.stats is not None and r.stats.latency_ms.p99 is not None]
                p99 = sum(measured) / len(measured) if measured else slo.latency_ms
                axis.plot(
                    [cell.key.rate], [p99], "x", color=color, markersize=8, markeredgewidth=1.5, alpha=0.8
                )
        axis.axhline(slo.latency_ms, color="red", linestyle=":", label=f"SLO {slo.latency_ms:g} ms")
        axis.set_yscale("log")
        _plain_log_labels(axis)
        axis.set_xlabel("offered load (Poisson requests/s)")
        axis.set_ylabel("latency, scheduled to done (ms, log)")
        axis.set_title(f"{server}: where each protocol's p99 crosses the SLO", fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(
        "Latency vs offered load; bars: 95 % intervals; cells with too few requests for p99 are left out\n"
        "(x: measured p99 of an excluded cell, generator-invalid or failed: not a server result)",
        fontsize=10,
    )
    return _to_data_uri(figure)


def throughput_vs_load(cells: Sequence[CellSummary]) -> str | None:
    panels = _open_lines(cells)
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False, sharey=False)
    for axis, (server, lines) in zip(axes[0], sorted(panels.items()), strict=True):
        top = 0.0
        for group, members in sorted(lines.items()):
            usable = sorted((c for c in members if c.usable), key=lambda c: c.key.rate or 0.0)
            rates = [c.key.rate or 0.0 for c in usable]
            top = max([top, *rates])
            axis.errorbar(
                rates,
                [c.throughput_rps.mean for c in usable],
                yerr=_error_bars([c.throughput for c in usable]),
                fmt="-o",
                capsize=3,
                color=PROTOCOL_COLORS.get(group.protocol),
                label=_line_label(group, list(lines)),
            )
        axis.plot([0, top], [0, top], ":", color="grey", label="achieved = offered")
        axis.set_xlabel("offered load (Poisson requests/s)")
        axis.set_ylabel("achieved ok responses/s")
        axis.set_title(
            f"{server}: achieved vs offered\n(the line flattens where the server saturates)", fontsize=10
        )
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    return _to_data_uri(figure)


def batch_sweep(points: Sequence[BatchSweepPoint]) -> str | None:
    usable = [p for p in points if p.usable and p.p50_ms is not None]
    if not usable:
        return None
    figure, (latency_axis, rate_axis) = plt.subplots(1, 2, figsize=(13, 4.6))
    lines: dict[tuple[str, str, str, int | None], list[BatchSweepPoint]] = {}
    for point in usable:
        lines.setdefault(
            (point.server, point.protocol, point.server_config_name, point.concurrency), []
        ).append(point)
    for (server, protocol, config, concurrency), members in sorted(lines.items(), key=lambda i: str(i[0])):
        members.sort(key=lambda p: p.batch)
        label = f"{server} {protocol}" + (f" [{config}]" if config != "default" else "")
        if len({k[3] for k in lines}) > 1:
            label += f" c={concurrency}"
        style = {"color": PROTOCOL_COLORS.get(protocol), "marker": SERVER_MARKERS.get(server, "o")}
        batches = [p.batch for p in members]
        latency_axis.plot(batches, [p.p50_ms for p in members], "-", label=label, **style)
        rate_axis.errorbar(
            batches,
            [p.predictions_per_s for p in members],
            yerr=_error_bars([p.predictions for p in members]),
            fmt="-",
            capsize=3,
            label=label,
            **style,
        )
    _batch_log_axes(latency_axis, rate_axis)
    latency_axis.set_ylabel("latency p50 (ms, log)")
    latency_axis.set_title("Batch sweep: latency p50 vs batch size")
    rate_axis.set_ylabel("predictions/s (log)")
    rate_axis.set_title("Batch sweep: predictions/s vs batch size")
    return _to_data_uri(figure)


def _batch_log_axes(*axes: Axes) -> None:
    """Log-log axes against batch size (powers of two), as both batch plots read them."""
    for axis in axes:
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        _plain_log_labels(axis)
        axis.set_xlabel("batch size (instances per request, log2)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)


def payload_costs(payloads: Sequence[PayloadCost]) -> str | None:
    if not payloads:
        return None
    if len({c.batch for c in payloads}) == 1:
        return _payload_bars(payloads)
    figure, (size_axis, encode_axis) = plt.subplots(1, 2, figsize=(13, 4.6))
    lines: dict[tuple[str, str], list[PayloadCost]] = {}
    for cost in payloads:
        lines.setdefault((cost.server, cost.protocol), []).append(cost)
    for (server, protocol), members in sorted(lines.items()):
        members.sort(key=lambda c: c.batch)
        style = {"color": PROTOCOL_COLORS.get(protocol), "marker": SERVER_MARKERS.get(server, "o")}
        label = f"{server} {protocol}"
        batches = [c.batch for c in members]
        size_axis.plot(batches, [c.body_bytes / 1024 for c in members], "-", label=label, **style)
        timed = [c for c in members if c.encode_ms is not None]
        encode_axis.plot([c.batch for c in timed], [c.encode_ms for c in timed], "-", label=label, **style)
    _batch_log_axes(size_axis, encode_axis)
    size_axis.set_ylabel("request body (KiB, log)")
    size_axis.set_title("Request body size per protocol (JSON text vs raw float32 bytes)")
    encode_axis.set_ylabel("encode time per body (ms, log)")
    encode_axis.set_title("Encode cost per protocol (paid by the client per request)")
    return _to_data_uri(figure)


def _payload_bars(payloads: Sequence[PayloadCost]) -> str:
    """One batch size only: bars per server x protocol read better than one-point lines."""
    costs = sorted(payloads, key=lambda c: (c.server, c.protocol))
    labels = [f"{c.server}\n{c.protocol}" for c in costs]
    colors = [PROTOCOL_COLORS.get(c.protocol, "tab:grey") for c in costs]
    figure, (size_axis, encode_axis) = plt.subplots(1, 2, figsize=(13, 4.2))
    size_axis.bar(labels, [c.body_bytes / 1024 for c in costs], color=colors)
    encode_axis.bar(labels, [c.encode_ms or 0.0 for c in costs], color=colors)
    size_axis.set_ylabel("request body (KiB)")
    size_axis.set_title(f"Request body size per protocol (batch {costs[0].batch})")
    encode_axis.set_ylabel("encode time per body (ms)")
    encode_axis.set_title(
        f"Encode cost per protocol (batch {costs[0].batch}; paid by the client per request)"
    )
    for axis in (size_axis, encode_axis):
        axis.tick_params(axis="x", labelsize=8)
        axis.grid(True, axis="y", alpha=0.3)
    return _to_data_uri(figure)


def decomposition(parts: Sequence[Decomposition]) -> str | None:
    rows = [p for p in parts if p.latency_p50_ms is not None]
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.8))
    labels = [f"{p.server} {p.protocol} (b={p.batch})" for p in rows]
    segments = (
        ("model compute floor", "compute_ms", "tab:purple"),
        ("transport + server overhead", "overhead_ms", "tab:orange"),
        ("client-side queueing", "queueing_ms", "tab:grey"),
        ("encode (client, before send)", "encode_ms", "tab:cyan"),
    )
    left = [0.0] * len(rows)
    for name, attribute, color in segments:
        widths = [max(getattr(p, attribute) or 0.0, 0.0) for p in rows]
        axis.barh(labels, widths, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axis.plot(
        [p.latency_p50_ms or 0.0 for p in rows], labels, "k|", markersize=18, label="measured latency p50"
    )
    axis.set_xlabel("milliseconds (medians at the lowest measured load)")
    axis.set_title(
        "Latency decomposition: how much of each request is the model, and how much is the path to it"
    )
    axis.invert_yaxis()
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axis.grid(True, axis="x", alpha=0.3)
    return _to_data_uri(figure)


def server_usage(cells: Sequence[CellSummary]) -> str | None:
    points: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
    for cell in cells:
        if cell.key.mode != "open" or cell.key.rate is None or not cell.usable:
            continue
        for run in cell.runs:
            for usage in run.server_usage:
                if usage.server != cell.key.server:
                    continue
                key = (cell.key.server, cell.key.protocol, cell.key.server_config_name)
                points.setdefault(key, []).append(
                    (cell.key.rate, usage.cpu_percent_mean, usage.rss_bytes_max / MIB)
                )
    if not points:
        return None
    figure, (cpu_axis, rss_axis) = plt.subplots(1, 2, figsize=(13, 4.6))
    for (server, protocol, config), members in sorted(points.items()):
        members.sort()
        label = f"{server} {protocol}" + (f" [{config}]" if config != "default" else "")
        style = {"color": PROTOCOL_COLORS.get(protocol), "marker": SERVER_MARKERS.get(server, "o")}
        rates = [m[0] for m in members]
        cpu_axis.plot(rates, [m[1] for m in members], "-", label=label, **style)
        rss_axis.plot(rates, [m[2] for m in members], "-", label=label, **style)
    for axis in (cpu_axis, rss_axis):
        axis.set_xlabel("offered load (Poisson requests/s)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    cpu_axis.set_ylabel("server CPU, mean over the window (% of one core)")
    cpu_axis.set_title("Server CPU under load: cost per request by protocol")
    rss_axis.set_ylabel("server resident memory, peak (MiB)")
    rss_axis.set_title("Server memory under load")
    return _to_data_uri(figure)


def machine_speed(timeline: MachineTimeline) -> str | None:
    """The machine's speed over the run: its calibration points (no load) and each cell's probe inside
    its own window (under its load); flagged cells in red. None when the run measured neither."""
    if not timeline.measured:
        return None
    figure, axis = plt.subplots(figsize=(8, 3.2))
    if timeline.calibration_ms is not None:
        middle, tolerance = timeline.calibration_ms, timeline.tolerance
        axis.axhspan(middle * (1 - tolerance), middle * (1 + tolerance), color="tab:green", alpha=0.12,
                     label=f"median calibration ±{tolerance:.0%}")
        axis.axhline(middle, color="tab:green", linewidth=1)
    if timeline.calibrations:
        axis.plot([p.t_s for p in timeline.calibrations], [p.speed_ms for p in timeline.calibrations], "D",
                  color="black", markersize=5, label="calibration between rounds (no load)")
    for flagged, color, label in ((False, "tab:blue", "cell: probe in its own window (under load)"),
                                  (True, "tab:red", "cell flagged: the machine was off")):
        chosen = [c for c in timeline.cells if c.flagged is flagged]
        if chosen:
            axis.plot([c.t_s for c in chosen], [c.speed_ms for c in chosen], "o", color=color, markersize=4,
                      label=label)
    axis.set_xlabel("seconds since the run's first measurement")
    batch = "" if timeline.batch is None else f", batch {timeline.batch}"
    axis.set_ylabel(f"model predict{batch} (ms)")
    axis.set_title("machine speed during the run (higher = slower machine)", fontsize=10)
    axis.legend(fontsize=7, loc="upper left")
    axis.grid(True, alpha=0.3)
    return _to_data_uri(figure)
