"""A server's own Prometheus metrics: where a local server exports them, scraping, and parsing.

The text format is parsed by prometheus-client's parser; what is kept is what a window's deltas need
(counters, gauges, histogram and summary `_sum`/`_count`), keyed by `metrics_file.series_key`.
"""

from __future__ import annotations

import math
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from serving.metrics_file import series_key
from serving.ports import LOOPBACK
from serving.tfserving import PROMETHEUS_PATH

# Families from the Prometheus client's own process/runtime collectors: our CPU/RSS sample covers these.
_SKIPPED_PREFIXES = ("python_", "process_")
# Labels that only repeat where the sample came from; dropping them keeps series keys stable across hosts.
_DROPPED_LABELS = frozenset({"hostname", "Hostname"})


def metrics_url(server: str, ports: dict[str, int], host: str = LOOPBACK) -> str:
    """A local server's Prometheus endpoint, from its ports by role (`Ports.of(server)`)."""
    if server == "torchserve":
        return f"http://{host}:{ports['torchserve_metrics']}/metrics"
    if server == "triton":
        return f"http://{host}:{ports['triton_metrics']}/metrics"
    return f"http://{host}:{ports['tfserving_rest']}{PROMETHEUS_PATH}"


def scrape_series(url: str, timeout_s: float = 2.0) -> tuple[dict[str, float], str | None]:
    """(series by key, None), or ({}, why) when the endpoint does not answer or is not Prometheus text."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (OSError, ValueError) as exc:
        return {}, f"{type(exc).__name__}: {exc}"[:300]
    try:
        return parse_metrics(text), None
    except ValueError as exc:
        return {}, f"not Prometheus text: {exc}"[:300]


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus exposition text as {series key: value}: what deltas over a window need.

    Kept: every counter and gauge series, and histogram/summary `_sum` and `_count` per label set
    (means over a window are delta sum / delta count). Dropped: buckets and quantiles, `_created`
    timestamps, host labels, and the client library's own `python_`/`process_` families.
    Raises ValueError on text that is not the Prometheus format.
    """
    series: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith(_SKIPPED_PREFIXES):
            continue
        for sample in family.samples:
            if "le" in sample.labels or "quantile" in sample.labels or sample.name.endswith("_created"):
                continue
            if not math.isfinite(sample.value):
                continue
            labels = {k: v for k, v in sample.labels.items() if k not in _DROPPED_LABELS}
            key = series_key(sample.name, labels)
            series[key] = series.get(key, 0.0) + sample.value
    return series
