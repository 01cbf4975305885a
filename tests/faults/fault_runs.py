"""One `inferload load` run as a user starts it, timed, with its records audited (accounting.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from accounting import RunAudit, audit
from external_targets import torchserve_endpoints

from inferload_formats import CELL_DONE, cell_status

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LoadRun:
    out: Path
    returncode: int
    output: str  # stdout + stderr, for assertion messages
    wall_s: float
    audit: RunAudit


def load(target_args: list[str], out: Path, *, rate: float, duration_s: float, timeout_s: float,
         warmup_s: float = 0.5, extra: tuple[str, ...] = (), limit_s: float = 300) -> LoadRun:
    """`inferload load` (open loop, Poisson) with the generator's lateness limit relaxed: these tests
    judge what the faults do to the records, and 2 shared cores make lateness a lottery."""
    argv = [sys.executable, "-m", "inferload", "load", *target_args, "--rate", str(rate),
            "--duration", str(duration_s), "--warmup", str(warmup_s), "--timeout", str(timeout_s),
            "--lateness-limit-ms", "1000", "--out", str(out), "--quiet", *extra]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=limit_s)
    wall_s = time.monotonic() - started
    output = done.stdout[-3000:] + done.stderr[-3000:]
    return LoadRun(out, done.returncode, output, wall_s, audit(out) if out.is_dir() else RunAudit())


def external_matrix(name: str, *, address: str, ports: dict[str, int], features: int, rates: list[int],
                    duration_s: float) -> str:
    """A matrix of short cells against the fault host's TorchServe over REST-JSON and gRPC, as an external
    target (nothing is started): what the matrix-level fault tests and benchmarks/reliability.py run."""
    return f"""\
name: {name}
model: {{classes: 64, features: {features}, seed: 0}}
servers: [torchserve]
protocols: [rest-json, grpc]
load: {{mode: open, rates: {rates}}}
batch_sizes: [1]
warmup_s: 0
duration_s: {duration_s:g}
lateness_limit_ms: 1000
server_warmup: {{enabled: false}}  # the server host is warm already; the cells are what is measured
target:
  kind: external
  model_name: linear
  servers:
{torchserve_endpoints(address, ports)}"""


def done_cells(out: Path) -> dict[str, str]:
    """cell id -> the text of its cell.json, for the cells of a matrix's results done as a resume
    judges them (cell.json read through its owner, inferload_formats)."""
    return {path.parent.name: path.read_text() for path in sorted(out.glob("cells/*/cell.json"))
            if cell_status(path.parent)[0] == CELL_DONE}
