"""Running `locust -f loadtest/` as a user would, and reading its final stats: shared by the Locust tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import loadtest

LOADTEST_DIR = str(Path(loadtest.__file__).parent)


def run_locust(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`python -m locust -f loadtest/ ARGS` in `cwd`, output captured; `env` adds to this environment."""
    command = [sys.executable, "-m", "locust", "-f", LOADTEST_DIR, *args]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment)


def requests_and_failures(stdout: str) -> tuple[int, int]:
    """From Locust's final stats (`--json`, printed at shutdown, also after a master's last report).

    With --processes every worker prints its own (empty) list first: the master's comes last.
    """
    decoder, documents, text = json.JSONDecoder(), [], stdout.strip()
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].lstrip()
    entries = documents[-1]
    return sum(e["num_requests"] for e in entries), sum(e["num_failures"] for e in entries)
