"""The runner's handle on the calibration probe (`models/probe.py`), a long-lived child process.

`CalibrationProbe` starts `python -m models.probe` (pinned to the servers' CPU set with taskset when
they are pinned), then, over its stdin/stdout, asks for a calibration point before the first round and
after every round, and switches the low-duty probe on while each cell's load runs. The probe writes
`calibration.jsonl` itself (its format is `models/calibration.py`'s); the runner reads it back through
that reader. A probe that fails is a warning, never a failed matrix: the cells then record no speed.

`NoCalibration` is the same interface doing nothing (calibration switched off, or an external target
whose servers run on another machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

__all__ = ["Calibration", "CalibrationProbe", "NoCalibration"]

READY_TIMEOUT_S = 180.0  # torch's import and the full-size weights on a busy 2-core machine
ANSWER_TIMEOUT_S = 60.0


class Calibration(Protocol):
    """What the runner needs of a calibration probe."""

    path: Path | None

    def calibrate(self, label: str) -> int | None: ...

    def probing(self) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


class NoCalibration:
    """No probe: nothing is measured, and cells record no speed."""

    path: Path | None = None

    def calibrate(self, label: str) -> int | None:
        return None

    @contextlib.contextmanager
    def probing(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class CalibrationProbe:
    """`python -m models.probe` as a child process; `warn` receives every problem (the matrix goes on)."""

    def __init__(self, *, artifacts: Path, batches: Sequence[int], out_path: Path, log_path: Path,
                 cpus: Sequence[int] | None, probe_interval_s: float, budget_s: float,
                 warn: Callable[[str], None] = print) -> None:
        self.path: Path | None = out_path
        self.warn = warn
        self.log_path = log_path
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._broken: str | None = None
        command = [sys.executable, "-m", "models.probe", "--artifacts", str(artifacts),
                   "--out", str(out_path), "--probe-interval", str(probe_interval_s),
                   "--budget", str(budget_s)]
        for batch in sorted(set(batches)):
            command += ["--batch", str(batch)]
        taskset = shutil.which("taskset")
        if cpus is not None and taskset is not None:
            command = [taskset, "--cpu-list", ",".join(str(c) for c in cpus), *command, "--pinned"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=log, text=True,
                                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True).start()
        self._ready = False  # waited for at the first command: torch loads while the servers start

    def _wait_ready(self) -> bool:
        if not self._ready and self._broken is None:
            ready = self._answer(READY_TIMEOUT_S)
            if ready is None or ready.get("ok") != "ready":
                self._fail(f"the calibration probe did not start ({self._why(ready)})")
                return False
            self._ready = True
        return self._broken is None

    def _read(self, stdout: IO[str] | None) -> None:
        assert stdout is not None
        for line in stdout:
            with contextlib.suppress(ValueError):
                self._answers.put(json.loads(line))
        self._answers.put(None)  # end of output: the probe is gone

    def _answer(self, timeout_s: float) -> dict[str, Any] | None:
        try:
            return self._answers.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _why(self, answer: dict[str, Any] | None) -> str:
        if answer is not None and "error" in answer:
            return str(answer["error"])
        tail = ""
        with contextlib.suppress(OSError):
            tail = " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])
        return f"no answer; see {self.log_path}" + (f": {tail}" if tail else "")

    def _fail(self, why: str) -> None:
        if self._broken is None:
            self.warn(f"warning: {why}; cells from here on record no calibration")
        self._broken = why
        self.close()

    def _ask(self, command: dict[str, Any]) -> dict[str, Any] | None:
        if not self._wait_ready() or self._process.stdin is None:
            return None
        try:
            self._process.stdin.write(json.dumps(command) + "\n")
            self._process.stdin.flush()
        except OSError as exc:
            self._fail(f"the calibration probe stopped ({exc})")
            return None
        answer = self._answer(ANSWER_TIMEOUT_S)
        if answer is None or "ok" not in answer:
            self._fail(f"the calibration probe failed ({self._why(answer)})")
            return None
        return answer

    def calibrate(self, label: str) -> int | None:
        """Take a calibration point now; its index in calibration.jsonl (None: the probe failed)."""
        answer = self._ask({"calibrate": label})
        return int(answer["ok"]["index"]) if answer is not None else None

    @contextlib.contextmanager
    def probing(self) -> Iterator[None]:
        """The low-duty probe on for the duration of the block (a cell's load)."""
        self._ask({"probe": True})
        try:
            yield
        finally:
            self._ask({"probe": False})

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                if self._process.stdin is not None:
                    self._process.stdin.write(json.dumps({"quit": True}) + "\n")
                    self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> CalibrationProbe:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
