"""Merge the record streams of load workers on several hosts into one run directory with one load.json.

Why: with Locust's master/worker mode (or `inferload load` started on several hosts), each worker
writes its own `requests.<stream>.jsonl` where it runs (`--records-dir`). The streams are copied
side by side (each keeps its header, which names its host and pid; a Locust stream's open-ended
window is ended at the run's last arrival, in its header), and load.json is computed over all of
them: the total rate is the sum of the streams' shares, `streams` / `hosts` say which host sent what,
and a worker that died mid-run is named in `lost_workers` (its records up to then are kept; the run is
marked invalid, never silently short).

Times are `time.monotonic_ns()` of the host that sent them; `read_run` puts other hosts' streams on
the first host's timeline from the wall - monotonic offset in each header (loadtest/_clock.py), so
windows and arrivals line up across machines as closely as their wall clocks agree.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ._schema import RunHeader, read_header, read_run, rewrite_header, run_streams, stream_path
from ._settings import LoadSettings
from ._summary import LoadSummary, summarize

__all__ = ["MergeError", "merge_runs"]


class MergeError(ValueError):
    """The sources cannot be merged into one run (nothing to merge, clashing streams, mixed loads)."""


def _streams_of(sources: Sequence[Path]) -> dict[int, tuple[Path, RunHeader]]:
    found: dict[int, tuple[Path, RunHeader]] = {}
    for source in sources:
        paths = run_streams(source) if Path(source).is_dir() else []
        if not paths:
            raise MergeError(
                f"{source}: no requests.<stream>.jsonl here: give the --records-dir of each worker host"
            )
        for path in paths:
            header = read_header(path)
            stream = header.stream
            if stream in found and found[stream][0].resolve() != path.resolve():
                raise MergeError(
                    f"stream {stream} is in both {found[stream][0]} and {path}: every worker must write "
                    "distinct streams (Locust numbers them by worker index; give `inferload load` on each "
                    "host its own --stream-offset)"
                )
            found[stream] = (path, header)
    return found


def _check_same_load(streams: dict[int, tuple[Path, RunHeader]]) -> RunHeader:
    """Every stream must have loaded the same server, protocol, batch and mode; returns the first."""
    keys = ("server", "protocol", "batch", "mode")
    first_path, first = next(iter(streams.values()))
    for path, header in streams.values():
        for key in keys:
            if header.settings.get(key) != first.settings.get(key):
                raise MergeError(
                    f"{path} loaded {key}={header.settings.get(key)!r} but {first_path} "
                    f"{key}={first.settings.get(key)!r}: merge only the streams of one load"
                )
    return first


def _total_settings(streams: dict[int, tuple[Path, RunHeader]], first: RunHeader) -> LoadSettings:
    """The merged run's settings: the first stream's, with the total rate of all streams."""
    known = {k: v for k, v in first.settings.items() if k in LoadSettings.model_fields}
    settings = LoadSettings.model_validate({**known, "processes": 1})
    rates = [header.rate for _, header in streams.values()]
    total = sum(r for r in rates if r) if any(rates) else None
    # Locust runs dozens of users (streams): more than LoadSettings allows processes; not re-validated.
    return settings.model_copy(update={"rate": total, "processes": len(streams)})


def _end_at_the_last_arrival(out: Path) -> None:
    """Locust streams run until Locust stops them, so their headers' window never ends: end each at the
    run's last scheduled arrival (a stream whose own window ends earlier keeps its end), in the merged
    streams' headers, so the load summary and every later reading count in the same window."""
    data = read_run(out)
    if len(data.records) == 0:
        return
    last_ns = int(data.records["scheduled_ns"].max()) + 1
    for path, header, shift in zip(run_streams(out), data.headers, data.clock_shifts, strict=True):
        if header.measure_end_ns > last_ns:  # on the run's timeline; written back on the stream's own
            rewrite_header(path, replace(header.shifted(-shift), measure_end_ns=last_ns - shift))


def merge_runs(sources: Sequence[str | Path], out_dir: str | Path, *, run: str | None = None) -> LoadSummary:
    """Copy every stream of `sources` into `out_dir` and write its load.json; returns the summary."""
    out = Path(out_dir)
    streams = _streams_of([Path(s) for s in sources])
    first = _check_same_load(streams)
    out.mkdir(parents=True, exist_ok=True)
    for stream, (path, _) in streams.items():
        target = stream_path(out, stream)
        if path.resolve() != target.resolve():
            shutil.copyfile(path, target)
    settings = _total_settings(streams, first)
    if run is not None:
        settings = settings.model_copy(update={"run": run})
    _end_at_the_last_arrival(out)
    summary = summarize(settings, read_run(out), cpu_percent=[], interrupted=False)
    summary.write(out / "load.json")
    return summary
