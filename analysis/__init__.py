"""Statistics and reports from inferload results files (reading only: never starts servers or sends load).

Public surface: `summarize_run` for one run directory, `read_results` for a results directory,
`write_report` for its report, and the summary records they return. Each name is imported from its
module on first use, so the runner's rate search (which judges its steps with `analysis.stats`) does
not load the plotting and templates of the report.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.errors import ResultsError
    from analysis.intervals import Estimate
    from analysis.keys import CellKey, GroupKey
    from analysis.percentiles import Percentiles, QuantileInterval, min_samples, percentile, quantile_interval
    from analysis.repetitions import CellSummary, Spread, summarize_cells
    from analysis.report import ReportPaths, write_report
    from analysis.results import Results, read_results
    from analysis.stats import RunSummary, Slo, summarize_run
    from analysis.verdicts import BatchingVerdict, BatchSweepPoint, BestConfiguration, SweepVerdict

__all__ = [
    "BatchSweepPoint",
    "BatchingVerdict",
    "BestConfiguration",
    "CellKey",
    "CellSummary",
    "Estimate",
    "GroupKey",
    "Percentiles",
    "QuantileInterval",
    "ReportPaths",
    "Results",
    "ResultsError",
    "RunSummary",
    "Slo",
    "Spread",
    "SweepVerdict",
    "min_samples",
    "percentile",
    "quantile_interval",
    "read_results",
    "summarize_cells",
    "summarize_run",
    "write_report",
]

_MODULE_OF = {
    "ResultsError": "errors", "Estimate": "intervals", "CellKey": "keys", "GroupKey": "keys",
    "Percentiles": "percentiles", "QuantileInterval": "percentiles", "min_samples": "percentiles",
    "percentile": "percentiles", "quantile_interval": "percentiles", "CellSummary": "repetitions",
    "Spread": "repetitions", "summarize_cells": "repetitions", "ReportPaths": "report",
    "write_report": "report", "Results": "results", "read_results": "results", "RunSummary": "stats",
    "Slo": "stats", "summarize_run": "stats", "BatchingVerdict": "verdicts", "BatchSweepPoint": "verdicts",
    "BestConfiguration": "verdicts", "SweepVerdict": "verdicts",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(import_module(f"analysis.{module}"), name)
