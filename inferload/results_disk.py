"""A results disk that fails (full, read-only, I/O errors) stops the whole matrix with one clear error.

Why not fail the cell and go on, as for a server that dies: every later cell would fail the same
way (and its cell.json could not be written either), burning the matrix's time for nothing. What
was written before stays: finished cells keep their `done` cell.json, the interrupted cell's records
up to the last flush stay in its directory (moved aside and redone on resume, like any unfinished
cell). The error names the file and the reason, and says how to go on.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})

P = ParamSpec("P")
R = TypeVar("R")


def results_disk_failure(exc: BaseException) -> str | None:
    """What failed, when `exc` (or what caused it) is the results disk failing; None otherwise."""
    from loadtest import ResultsWriteError  # the load's own words: which records file, and why

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ResultsWriteError):
            return seen.failure
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            where = f"{seen.filename}: " if seen.filename else ""
            return f"{where}{seen.strerror or seen} (errno {seen.errno})"
        seen = seen.__cause__ or seen.__context__
    return None


def stop_on_disk_failure(error: type[Exception]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn a results-disk failure raised by a matrix run (`run(experiment, out_dir, ...)`) into
    `error` with the reason, what is kept, and how to resume."""

    def decorate(run: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(run)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return run(*args, **kwargs)
            except Exception as exc:
                detail = results_disk_failure(exc)
                if detail is None:
                    raise
                out = kwargs.get("out_dir", args[1] if len(args) > 1 else "the results directory")
                raise error(
                    f"the results disk failed, so the matrix stopped: {detail}\n"
                    f"Cells finished before are kept in {Path(str(out))} (cell.json status done); free "
                    "space there (or give another --out) and run the same command again: finished cells "
                    "are not rerun, the interrupted one is redone"
                ) from exc

        return guarded

    return decorate
