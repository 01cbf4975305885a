"""Statistics and reports from inferload results files (reading only: never starts servers or sends load).

Public surface: `summarize_run` for one run directory, `read_results` for a results directory,
`write_report` for its report, and the summary records they return.
"""

from analysis.errors import ResultsError
from analysis.intervals import Estimate
from analysis.percentiles import Percentiles, QuantileInterval, min_samples, percentile, quantile_interval
from analysis.repetitions import CellKey, CellSummary, GroupKey, Spread, summarize_cells
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
