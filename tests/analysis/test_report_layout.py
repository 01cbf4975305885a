"""The report reads as laid out: plot titles clear of each other, no table wider than the page (checked
in headless Chromium), and an excluded cell says why it was excluded, not that it had no responses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from report_in_browser import measure, screenshot
from synthetic_results import NS_PER_S, WINDOW_START_NS, ResultsBuilder, lognormal

from analysis import plots, read_results, write_report
from serving.metrics_file import series_key

SERVERS = ("tfserving", "torchserve")
PROTOCOLS = ("rest-json", "rest-binary", "grpc")
RATES = (25, 50, 100, 200)
EXCLUDED = ("torchserve", "grpc", 200)  # generator-invalid: its server still counted 427 requests
LABELS = {"model_name": "linear", "model_version": "default"}
LATE = ("generator lateness p99 41.3 ms is above the limit 5.0 ms: the generator could not keep its "
        "schedule (lower the rate or add --processes)")


def _torchserve_sample(t_ns: int, requests: int) -> dict:
    return {"t_ns": t_ns, "server": "torchserve", "kind": "torchserve", "source": "psutil",
            "cpu_percent": 80.0, "cpu_seconds": requests * 0.004, "rss_bytes": 300_000_000,
            "metrics": {series_key("ts_inference_requests_total", LABELS): requests,
                        series_key("ts_queue_latency_microseconds_total", LABELS): requests * 800.0,
                        series_key("ts_inference_latency_microseconds_total", LABELS): requests * 3000.0}}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 servers x 3 protocols x 4 rates, latencies growing with the rate; one cell excluded as a busy
    machine excludes it (the generator fell behind) while the server's counters saw its requests."""
    builder = ResultsBuilder(tmp_path_factory.mktemp("layout") / "experiment")
    for s, server in enumerate(SERVERS):
        for p, protocol in enumerate(PROTOCOLS):
            for r, rate in enumerate(RATES):
                excluded = (server, protocol, rate) == EXCLUDED
                window_s = 450 / rate
                metrics = [_torchserve_sample(WINDOW_START_NS - NS_PER_S // 4, 1000),
                           _torchserve_sample(WINDOW_START_NS + round(window_s * NS_PER_S) + 1, 1427)]
                builder.cell(
                    server=server, protocol=protocol, rate=rate, window_s=window_s,
                    requests=lognormal(100 * s + 10 * p + r, 450, median_ms=4.0 + 3 * p + 12 * r * r,
                                       sigma=0.4, window_s=window_s),
                    valid=not excluded,
                    invalid_reasons=[LATE] if excluded else [],
                    metrics=metrics if server == "torchserve" and protocol == "grpc" else (),
                    payloads=[{"server": server, "protocol": protocol, "batch": 1,
                               "body_bytes": (11_500, 4_096, 4_120)[p], "encode_ms_median": 0.02 * (p + 1)}],
                )
    builder.floor([{"framework": "tensorflow", "batch": 1, "median_ms": 0.3},
                   {"framework": "torch", "batch": 1, "median_ms": 0.2}])
    write_report(builder.root)
    return builder.root / "report.html"


def _cells_row(html: str, server: str, protocol: str, rate: int) -> str:
    table = html[html.index("<h2>All cells</h2>"):]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    wanted = f"<td>{server}</td><td>{protocol}</td>"
    (row,) = [r for r in rows if wanted in r and f"<td>{rate}/s</td>" in r]
    return row


def test_an_excluded_cell_says_why_instead_of_showing_no_responses(report: Path) -> None:
    row = _cells_row(report.read_text(), *EXCLUDED)
    assert "no ok responses" not in row
    assert "excluded: generator invalid" in row and "not a server result" in row
    usable = _cells_row(report.read_text(), "torchserve", "grpc", 100)
    assert "excluded" not in usable and "no ok responses" not in usable


def test_the_server_side_table_still_shows_the_excluded_cells_requests(report: Path) -> None:
    html = report.read_text()
    section = html[html.index("The servers' own view"):]
    assert "427 / " in section[: section.index("</table>")]


def test_plot_titles_clear_the_figure_title_and_each_other(
    report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each figure is drawn as the report draws it; no axes title may overlap the figure's title or
    another axes' title."""
    figures = []
    drawn = plots._to_data_uri
    monkeypatch.setattr(plots, "_to_data_uri", lambda figure: figures.append(figure) or drawn(figure))
    cells = read_results(report.parent).cells
    plots.latency_vs_load(cells, read_results(report.parent).slo)
    plots.throughput_vs_load(cells)
    assert len(figures) == 2
    for figure in figures:
        canvas = FigureCanvasAgg(figure)  # the report's PNGs are drawn by Agg too
        canvas.draw()
        renderer = canvas.get_renderer()
        titles = [axis.title.get_window_extent(renderer) for axis in figure.axes if axis.get_title()]
        if figure._suptitle is not None:  # noqa: SLF001
            titles.append(figure._suptitle.get_window_extent(renderer))  # noqa: SLF001
        overlapping = [(a, b) for i, a in enumerate(titles) for b in titles[i + 1:] if a.overlaps(b)]
        assert not overlapping, overlapping


@pytest.mark.needs("chromium")
def test_in_chromium_no_table_is_wider_than_the_page(report: Path, tmp_path: Path) -> None:
    layout = measure(report)
    assert layout.sticking_out() == []
    assert layout.page_width <= layout.viewport, "the whole page scrolls sideways"
    verdicts = [t for t in layout.tables if t["title"] == "Verdicts"]
    assert verdicts and not any(t["scrolls"] for t in verdicts)  # the verdicts fit, without a scroller
    assert screenshot(report, tmp_path / "report.png").stat().st_size > 10_000
