"""Statistics and reports from inferload results files (reading only: never starts servers or sends load).

Public surface: `summarize_run` for one run directory, `write_report` for a results directory, and
the summary records they return.
"""

from analysis.errors import ResultsError
from analysis.percentiles import Percentiles, percentile
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
    "Experiment",
    "GroupKey",
    "Percentiles",
    "ReportPaths",
    "ResultsError",
    "RunSummary",
    "Slo",
    "Spread",
    "SweepVerdict",
    "load_experiment",
    "percentile",
    "summarize_cells",
    "summarize_run",
    "write_report",
]
