"""What keeps a load worker honest when its surroundings fail: a killed parent, a full results disk.

Both are engine-agnostic (the worker wires them to whichever engine runs the schedule):

- `watch_parent()`: the parent writes nothing to a worker's stdin after the start message, so EOF
  there means the parent is gone (e.g. the runner was killed with SIGKILL, which no handler sees).
  The worker then stops as on SIGTERM: an orphan must not go on loading the server for the rest of
  its schedule, beside the measurements of whatever runs next.
- `GuardedWriter`: the records writer behind a guard. The first write that fails (ENOSPC on a full
  disk, EROFS, EIO, a removed directory) stops the run at once instead of killing request handlers
  one by one while the load goes on; what was flushed before stays on disk (a torn last line is
  skipped by the reader), and the failure is told to the parent through the worker's stdout,
  because the worker's own log file may sit on that full disk too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from ._schema import RecordWriter, RequestRecord, RunHeader


def watch_parent(fd: int | None = None) -> threading.Thread:
    """Send this process SIGTERM when the file descriptor `fd` (default: stdin's) reaches EOF.

    Reads the raw descriptor (os.read), never the buffered `sys.stdin`: a daemon thread blocked in
    a buffered read holds that object's lock, and the interpreter aborts at exit when it finds it
    taken ("could not acquire lock for <stdin> at interpreter shutdown")."""
    source = sys.stdin.fileno() if fd is None else fd

    def watch() -> None:
        try:
            while os.read(source, 4096):
                pass  # nothing more is expected; read on until the parent's end closes the pipe
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="inferload-parent-watch", daemon=True)
    thread.start()
    return thread


def describe_write_failure(path: Path, exc: OSError) -> str:
    """`<path>: No space left on device (errno 28)`: what a person needs to act on."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    errno = f" (errno {exc.errno})" if exc.errno is not None else ""
    return f"{path}: {reason}{errno}"


class GuardedWriter:
    """A `RecordWriter` whose first failed write calls `on_failure` once and turns later writes into
    counted losses (`unwritten`); `failure` says what failed, None while all is well."""

    def __init__(self, path: Path, header: RunHeader, on_failure: Callable[[], None]) -> None:
        self.path = path
        self.failure: str | None = None
        self.unwritten = 0  # records handed over after the failure (never written)
        self._on_failure = on_failure
        self._writer: RecordWriter | None = None
        try:
            self._writer = RecordWriter(path, header)
        except OSError as exc:
            self._failed(exc)

    @property
    def count(self) -> int:
        """Records handed to the writer before the failure (the last flush may not hold them all)."""
        return self._writer.count if self._writer is not None else 0

    def add(self, record: RequestRecord) -> None:
        if self.failure is None and self._writer is not None:
            try:
                self._writer.add(record)
                return
            except OSError as exc:
                self._failed(exc)
        self.unwritten += 1

    def flush_if_due(self) -> None:
        if self.failure is None and self._writer is not None:
            try:
                self._writer.flush_if_due()
            except OSError as exc:
                self._failed(exc)

    def close(self) -> None:
        if self._writer is None:
            return
        if self.failure is None:
            try:
                self._writer.close()
            except OSError as exc:
                self._failed(exc)
            return
        try:  # the buffer cannot be written: close the file without another try
            self._writer.discard()
        except OSError:
            pass

    def _failed(self, exc: OSError) -> None:
        if self.failure is None:
            self.failure = describe_write_failure(self.path, exc)
            self._on_failure()
