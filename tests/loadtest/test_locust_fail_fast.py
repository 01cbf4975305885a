"""A Locust run whose first requests all fail stops at once, with the server's error text.

Why: a wrong model name or input width fails every request, and stock Locust would run on at
100 % failures for the whole --run-time. Each run below is given a long --run-time and a rate that
would send thousands of requests in it; stopping after a handful proves the run ended early.
The targets are ones whose description API the users cannot know (TorchServe, TF Serving gRPC at
non-standard ports, no --metadata-url), so only the requests themselves can tell; where the
server can be asked, the mismatch is caught before load (test_locust_feature_discovery.py).
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from locust_runs import (
    get,
    post,
    requests_and_failures,
    run_locust,
    users,
    wait_for,
    web_ui,
    worker_processes,
)

from loadtest import RequestRecord
from loadtest._locust_fail_fast import FirstRequests, await_workers_quit
from loadtest._schema import Status

LONG_RUN = "600s"  # never reached: the run must stop long before
RATE = "20"  # 12,000 requests in LONG_RUN; a fail-fast stop sends a handful


def locust(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_locust(cwd, *args, timeout=timeout)


def headless(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return locust(cwd, "--headless", "--json", "-t", LONG_RUN, "--rate", RATE, *args)


def unserved_model_at_torchserve_rest_json(port_of, features: int) -> list[str]:
    """The Locust options of a TorchServe REST-JSON target asked for a model it does not serve."""
    host = f"http://127.0.0.1:{port_of('torchserve', 'rest-json')}"
    return ["--features", str(features), "--model-name", "nope", "--host", host, "TorchServeRestJson"]


def record(status: Status, code: int = 0, error: str | None = None) -> RequestRecord:
    return RequestRecord(
        seq=0,
        stream=0,
        server="torchserve",
        protocol="rest-json",
        batch=1,
        scheduled_ns=0,
        sent_ns=0,
        done_ns=0,
        bytes_out=0,
        bytes_in=0,
        status=status,
        code=code,
        error=error,
    )


@pytest.mark.parametrize(
    ("statuses", "stops_after"),
    [
        (["error"] * 5, 5),  # the window filled with failures: stop, once
        (["error", "timeout", "error", "error", "timeout"], 5),  # timeouts are failures too
        (["error", "dropped", "error", "error", "error", "error"], 6),  # drops are the generator's
        (["ok", "error", "error", "error", "error", "error", "error"], None),  # one success: keep going
        (["error", "error", "error", "error", "ok"], None),
        (["error"] * 4, None),  # not yet decided
        (["ok"] * 5 + ["error"] * 10, None),  # failures after the window are not this check's
    ],
)
def test_the_run_stops_only_when_the_first_completed_requests_all_failed(
    statuses: list[Status], stops_after: int | None
) -> None:
    watched = FirstRequests(window=5)
    verdicts = [watched.add(record(status, 404, "no such model")) for status in statuses]
    stops = [position for position, stop in enumerate(verdicts, start=1) if stop]
    assert stops == ([] if stops_after is None else [stops_after])


def test_the_first_error_is_kept_on_one_line() -> None:
    watched = FirstRequests(window=2)
    watched.add(record("error", 404, '{\n  "code": 404,\n  "message": "Model not found: nope"\n}\n'))
    watched.add(record("error", 500, "later error"))
    assert watched.first_error == 'error 404: { "code": 404, "message": "Model not found: nope" }'


@pytest.mark.servers
@pytest.mark.parametrize(
    ("server", "protocol", "user_class", "server_says"),
    [
        ("torchserve", "rest-json", "TorchServeRestJson", "Model not found: nope"),
        ("torchserve", "rest-binary", "TorchServeRestBinary", "Model not found: nope"),
        ("torchserve", "grpc", "TorchServeGrpc", "nope"),
        ("tfserving", "grpc", "TFServingGrpc", "nope"),
    ],
)
def test_a_wrong_model_name_stops_the_run_with_the_servers_error(
    port_of, small_features, tmp_path, server: str, protocol: str, user_class: str, server_says: str
) -> None:
    result = headless(
        tmp_path,
        *users(2),
        "--features",
        str(small_features),
        "--model-name",
        "nope",
        "--host",
        f"127.0.0.1:{port_of(server, protocol)}",
        user_class,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Stopping the run: the first 5 requests" in result.stderr
    stop_line = next(line for line in result.stderr.splitlines() if "Stopping the run" in line)
    assert server_says in stop_line and "--model-name" in stop_line
    requests, failures = requests_and_failures(result.stdout)
    assert 5 <= requests < 200 and failures == requests  # stopped long before 12,000


@pytest.mark.servers
@pytest.mark.parametrize(
    ("server", "protocol", "user_class"),
    [
        ("torchserve", "rest-binary", "TorchServeRestBinary"),
        ("torchserve", "grpc", "TorchServeGrpc"),
        ("tfserving", "grpc", "TFServingGrpc"),
    ],
)
def test_a_wrong_feature_count_stops_the_run_with_the_servers_error(
    port_of, small_features, tmp_path, server: str, protocol: str, user_class: str
) -> None:
    result = headless(
        tmp_path,
        *users(1),
        "--features",
        str(small_features - 24),
        "--host",
        f"127.0.0.1:{port_of(server, protocol)}",
        user_class,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    stop_line = next(line for line in result.stderr.splitlines() if "Stopping the run" in line)
    assert f"{small_features - 24} features per instance (--features / --artifacts)" in stop_line
    first_error = stop_line.split("First error: ", 1)[1]
    # the server's own words, whichever server: TF Serving names the shapes, TorchServe's handler the width
    assert str(small_features) in first_error or str(small_features - 24) in first_error, first_error
    requests, failures = requests_and_failures(result.stdout)
    assert 5 <= requests < 200 and failures == requests


class WorkersThatQuit:
    """A master runner's view of its workers (`clients`, `server`): each asked to quit leaves after
    `quits_after_s` (None: never)."""

    def __init__(self, ids: list[str], quits_after_s: float | None) -> None:
        import gevent

        self.nodes = {worker: object() for worker in ids}
        self.asked: list[tuple[str, str]] = []
        self.quits_after_s = quits_after_s
        self.clients = self
        self.server = self
        gevent.get_hub().loop.update_now()  # the hub's clock is cached: a stale one fires timers at once

    @property
    def all(self) -> list[Any]:
        return [type("Node", (), {"id": worker})() for worker in self.nodes]

    def send_to_client(self, message: Any) -> None:
        import gevent

        self.asked.append((message.type, message.node_id))
        if self.quits_after_s is not None:
            gevent.spawn_later(self.quits_after_s, self.nodes.pop, message.node_id, None)


def test_a_stopping_master_asks_every_worker_to_quit_and_waits_until_they_have() -> None:
    """Locust's quit gave workers 0.5 s for their last stats: busy workers missed it and a run ended with
    0 requests counted. A quitting worker sends its last stats before it says it quits."""
    workers = WorkersThatQuit(["a", "b"], quits_after_s=0.3)
    started = time.monotonic()
    await_workers_quit(workers, wait_s=10.0)  # type: ignore[arg-type]
    assert sorted(workers.asked) == [("quit", "a"), ("quit", "b")]
    assert workers.nodes == {}
    assert 0.3 <= time.monotonic() - started < 10.0


def test_a_worker_that_never_quits_holds_the_end_only_until_the_deadline(caplog) -> None:
    workers = WorkersThatQuit(["silent"], quits_after_s=None)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="inferload"):
        await_workers_quit(workers, wait_s=0.3)  # type: ignore[arg-type]
    assert 0.3 <= time.monotonic() - started < 5.0
    assert "1 worker(s) did not quit within 0.3 s" in caplog.text


@pytest.mark.servers
def test_workers_tell_the_master_to_stop_the_run(port_of, small_features, tmp_path) -> None:
    result = headless(
        tmp_path,
        *worker_processes(2),
        *users(4, spawn_rate=100),
        *unserved_model_at_torchserve_rest_json(port_of, small_features),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "asking the master to stop the run" in result.stderr
    stop_line = next(line for line in result.stderr.splitlines() if "Stopping the run" in line)
    assert "Model not found: nope" in stop_line
    requests, failures = requests_and_failures(result.stdout)
    assert 5 <= requests < 400 and failures == requests


@pytest.mark.servers
def test_fail_fast_0_keeps_a_failing_run_going(port_of, small_features, tmp_path) -> None:
    result = locust(
        tmp_path,
        "--headless",
        "--only-summary",
        "-t",
        "3s",
        "--rate",
        RATE,
        "--fail-fast",
        "0",
        *unserved_model_at_torchserve_rest_json(port_of, small_features),
    )
    assert result.returncode == 1, result.stderr[-3000:]  # Locust's own exit code for failed requests
    assert "Stopping the run" not in result.stderr
    assert "--run-time limit reached" in result.stderr


@pytest.mark.servers
@pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "master-and-2-workers"])
def test_in_the_web_ui_the_run_stops_and_the_ui_shows_why(
    port_of, small_features, tmp_path, processes: int
) -> None:
    with web_ui(tmp_path, processes) as base:
        form = {
            "user_count": "2",
            "spawn_rate": "2",
            "user_classes": "TorchServeRestJson",
            "host": f"http://127.0.0.1:{port_of('torchserve', 'rest-json')}",
            "rate": RATE,
            "features": str(small_features),
            "model_name": "nope",
        }
        started = json.loads(post(f"{base}/swarm", form))
        assert started["success"] and started["user_classes"] == ["TorchServeRestJson"], started
        wait_for(lambda: json.loads(get(f"{base}/stats/requests"))["state"] == "stopped", what="the stop")
        logs = get(f"{base}/logs")
        assert "Stopping the run: the first 5 requests to torchserve rest-json" in logs
        assert "Model not found: nope" in logs
        assert get(f"{base}/")  # the UI stays up, so the user can fix the form and start again
