"""Running `locust -f loadtest/` as a user would, and reading its final stats: shared by the Locust tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import loadtest
from serving.ports import Ports

LOADTEST_DIR = str(Path(loadtest.__file__).parent)
NINE_USER_CLASSES = [
    "TFServingGrpc",
    "TFServingRestBinary",
    "TFServingRestJson",
    "TorchServeGrpc",
    "TorchServeRestBinary",
    "TorchServeRestJson",
    "TritonGrpc",
    "TritonRestBinary",
    "TritonRestJson",
]


def run_locust(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`python -m locust -f loadtest/ ARGS` in `cwd`, output captured; `env` adds to this environment."""
    command = [sys.executable, "-m", "locust", "-f", LOADTEST_DIR, *args]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment)


def users(
    count: int, *, spawn_rate: int | None = None, run_time: str | None = None, rate: float | None = None
) -> list[str]:
    """Locust's `-u COUNT -r SPAWN_RATE [-t RUN_TIME]` and our `[--rate RATE]` (arrivals per second over
    all users): all users started at once unless SPAWN_RATE says."""
    options = ["-u", str(count), "-r", str(spawn_rate or count)]
    options += ["-t", run_time] if run_time else []
    return options + (["--rate", f"{rate:g}"] if rate else [])


def worker_processes(count: int = 2) -> list[str]:
    """`--processes COUNT`, the master on a free port (not Locust's standard 5557: tests run side by side)."""
    master_port = str(Ports.free().tfserving_grpc)
    return ["--processes", str(count), "--master-bind-port", master_port, "--master-port", master_port]


@contextmanager
def web_ui(cwd: Path, processes: int = 0) -> Iterator[str]:
    """A `locust -f loadtest/` web UI on a free loopback port (with PROCESSES workers, once all have
    joined); yields its base URL, and stops the UI afterwards."""
    free = Ports.free()
    command = [sys.executable, "-m", "locust", "-f", LOADTEST_DIR, "--web-host", "127.0.0.1"]
    command += ["--web-port", str(free.tfserving_rest)]
    if processes:
        port = str(free.tfserving_grpc)
        command += ["--processes", str(processes), "--master-bind-port", port, "--master-port", port]
    ui = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{free.tfserving_rest}"
    try:
        wait_for(lambda: get(f"{base}/"), what="the web UI")
        if processes:
            stats = f"{base}/stats/requests"
            wait_for(lambda: len(json.loads(get(stats))["workers"]) == processes, what="the workers")
        yield base
    finally:
        ui.terminate()
        ui.wait(timeout=60)


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


def get(url: str) -> str:
    """The body of a GET to the Locust web UI."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def post(url: str, form: dict[str, str]) -> str:
    """The body of a form POST to the Locust web UI."""
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(url, data=data, timeout=30) as response:
        return response.read().decode()


def wait_for(check: Callable[[], object], *, what: str, limit_s: float = 120.0) -> None:
    """Poll `check` (a bounded loop): a truthy answer means ready; connection errors mean not yet."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {limit_s:.0f} s for {what}")
        time.sleep(0.5)
