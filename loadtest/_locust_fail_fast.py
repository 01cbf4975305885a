"""Fail-fast for Locust runs: when the first completed requests to a target all fail, stop the run.

Why: a misconfigured run (wrong model name, input shape, endpoint) fails every request, and Locust
would run on at 100 % failures for its whole --run-time; all of the first few failing means the setup
is wrong. The run stops once, from any process (workers ask the master), with the server's error text
(headless: exit code 1; web UI: the test stops, the UI stays up).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import gevent
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from loadtest._schema import RequestRecord
from loadtest._security import RefusalWatch
from loadtest._settings import LoadSettings

FAIL_FAST_REQUESTS = 5  # the first N completed requests to a target all failed: stop the run
FAIL_FAST_MESSAGE = "inferload_fail_fast"  # worker -> master: stop the run, with the reason
FAIL_FAST_EXIT_CODE = 1
# A master that stops the run asks each worker to quit and waits this long at most for them: a worker
# sends its last stats, then says it quits. Locust's own quit gives workers 0.5 s for those stats, and a
# busy machine's workers missed it: the run then ended with its requests uncounted.
WORKERS_QUIT_WAIT_S = 15.0

logger = logging.getLogger("inferload")


@dataclass
class FirstRequests:
    """The first `window` completed requests to one target in this process."""

    window: int
    completed: int = 0
    failed: int = 0
    first_error: str | None = None

    def add(self, record: RequestRecord) -> bool:
        """Count one record; True exactly once: when the window has filled with failures only."""
        if record.status == "dropped" or self.completed >= self.window:
            return False  # a drop is the generator's, not the server's; past the window: decided
        self.completed += 1
        if record.status != "ok":
            self.failed += 1
            if self.first_error is None:
                error = " ".join((record.error or "").split())  # one line: JSON error bodies span many
                self.first_error = f"{record.status} {record.code}: {error}"
        return self.completed == self.window and self.failed == self.window


def fail_fast_message(settings: LoadSettings, watched: FirstRequests) -> str:
    return (
        f"Stopping the run: the first {watched.window} requests to {settings.server} "
        f"{settings.protocol} at {settings.target} all failed. First error: {watched.first_error}. "
        f"Check that model {settings.model_name!r} is served there (--model-name), that it takes "
        f"{settings.features} features per instance (--features / --artifacts), the host and port "
        "(--host) and the server's log. `--fail-fast 0` keeps a failing run going."
    )


class FailFast:
    """Stops the whole run once per test, from any process: workers ask the master to stop it."""

    def __init__(self) -> None:
        self.watched: dict[tuple[Any, ...], FirstRequests] = {}
        self.refusals: dict[tuple[Any, ...], RefusalWatch] = {}
        self.stopping = False

    def reset(self) -> None:
        self.watched.clear()
        self.refusals.clear()
        self.stopping = False

    def watch_refusals(self, settings: LoadSettings, window: int) -> RefusalWatch | None:
        """Credentials refused mid-run (e.g. a rotated key) stop the run too, unless --fail-fast 0."""
        if window <= 0:
            return None
        key = (settings.server, settings.protocol, settings.target, settings.model_name)
        return self.refusals.setdefault(key, RefusalWatch(settings.url))

    def watch(self, settings: LoadSettings, window: int) -> FirstRequests | None:
        if window <= 0:
            return None
        key = (settings.server, settings.protocol, settings.target, settings.model_name)
        return self.watched.setdefault(key, FirstRequests(window))

    def listen(self, environment: Environment) -> None:
        """On the master: stop the run when a worker says its first requests all failed."""
        runner = environment.runner
        if isinstance(runner, MasterRunner):

            def on_message(environment: Environment, msg: Any, **_: Any) -> None:
                self.stop_run(environment, str(msg.data["message"]))

            runner.register_message(FAIL_FAST_MESSAGE, on_message)

    def stop_run(self, environment: Environment, message: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            logger.info("the first requests all failed: asking the master to stop the run")
            runner.send_message(FAIL_FAST_MESSAGE, {"message": message})
            return
        logger.error(message)
        if runner is None:
            return
        options = environment.parsed_options
        headless = bool(getattr(options, "headless", False))
        quits = headless or getattr(options, "autoquit", -1) != -1
        if quits:
            environment.process_exit_code = FAIL_FAST_EXIT_CODE
        # in a fresh greenlet: stopping the runner kills the users, possibly the caller's greenlet
        gevent.spawn(self._end, environment, quits)

    @staticmethod
    def _end(environment: Environment, quits: bool) -> None:
        runner = environment.runner
        assert runner is not None
        if not quits:
            runner.stop()  # web UI: the run stops, the UI keeps the failures and the log line
            return
        if isinstance(runner, MasterRunner):
            await_workers_quit(runner, WORKERS_QUIT_WAIT_S)
        elif getattr(environment.parsed_options, "csv_prefix", None):
            runner.stop()  # users gone, the counts final: let Locust's CSV writer catch up before it closes
            gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
        runner.quit()
        if environment.web_ui is not None:
            environment.web_ui.stop()


def await_workers_quit(runner: MasterRunner, wait_s: float) -> None:
    """Ask every worker to quit and wait until each has (at most `wait_s`): a quitting worker stops its
    users and sends its last stats before it says it quits, so the run's counts are then final."""
    for client in list(runner.clients.all):
        runner.server.send_to_client(Message("quit", None, client.id))
    deadline = time.monotonic() + wait_s
    while runner.clients.all and time.monotonic() < deadline:
        gevent.sleep(0.1)
    if runner.clients.all:
        logger.warning("%d worker(s) did not quit within %g s: the run's counts may miss their last "
                       "requests", len(runner.clients.all), wait_s)


FAIL_FAST = FailFast()  # one per process: every user of it reports here
