"""Statistics and reports from inferload results files (reading only: never starts servers or sends load).

Public surface: `summarize_run` for one run directory, `write_report` for a results directory, and
the summary records they return.
"""

from analysis.errors import ResultsError
from analysis.intervals import Estimate
from analysis.percentiles import Percentiles, QuantileInterval, min_samples, percentile, quantile_interval
from analysis.repetitions import CellKey, CellSummary, GroupKey, Spread, summarize_cells
from analysis.report import ReportPaths, write_report
from analysis.results import Experiment, load_experiment
from analysis.stats import RunSummary, Slo, summarize_run
from analysis.verdicts import BatchingVerdict, BatchSweepPoint, BestConfiguration, SweepVerdict

__all__ = [
    "BatchSweepPoint",
    "BatchingVerdict",
    "BestConfiguration",
    "CellKey",
    "CellSummary",
    "Estimate",
    "Experiment",
    "GroupKey",
    "Percentiles",
    "QuantileInterval",
    "ReportPaths",
    "ResultsError",
    "RunSummary",
    "Slo",
    "Spread",
    "SweepVerdict",
    "load_experiment",
    "min_samples",
    "percentile",
    "quantile_interval",
    "summarize_cells",
    "summarize_run",
    "write_report",
]
