"""Can this Locust worker reach its master? Asked once at start, with a deadline and a clear answer.

Why: a Locust worker whose master is unreachable (wrong --master-host, a firewall between hosts, the
master not started) retries for five minutes with a terse log line. Ours waits `--master-timeout`
seconds for a TCP connection to the master's port, then stops with what to check.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_MASTER_TIMEOUT_S", "MasterUnreachable", "master_of_worker", "wait_for_master"]

RETRY_S = 0.25
DEFAULT_MASTER_TIMEOUT_S = 60.0  # a worker may start a little before its master (e.g. on Kubernetes)


class MasterUnreachable(ConnectionError):
    """No TCP connection to the Locust master's port within the deadline."""


def wait_for_master(host: str, port: int, timeout_s: float) -> float:
    """Return the seconds it took to connect to host:port; raise MasterUnreachable after timeout_s."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(2.0, timeout_s))):
                return time.monotonic() - started
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            reason = last.strerror or type(last).__name__
            raise MasterUnreachable(
                f"this Locust worker cannot reach its master at {host}:{port} ({reason}) after "
                f"{timeout_s:g} s: start the master first (locust --master), check --master-host and "
                "--master-port, and that the port is open between the two hosts (--master-timeout "
                "waits longer)"
            )
        time.sleep(RETRY_S)


def master_of_worker(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str, int, float] | None:
    """(master host, port, timeout) when this command line starts a Locust worker, else None.

    Read from the command line (and Locust's LOCUST_* variables) before Locust's worker runner
    connects, because that connection retries silently for minutes.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--master-host", default=environ.get("LOCUST_MASTER_NODE_HOST", "127.0.0.1"))
    parser.add_argument("--master-port", default=environ.get("LOCUST_MASTER_NODE_PORT", "5557"))
    parser.add_argument(
        "--master-timeout", default=environ.get("INFERLOAD_MASTER_TIMEOUT", str(DEFAULT_MASTER_TIMEOUT_S))
    )
    try:
        known, _ = parser.parse_known_args(list(argv))
        worker = known.worker or environ.get("LOCUST_MODE_WORKER", "").lower() in ("1", "true")
        master = str(known.master_host), int(known.master_port), float(known.master_timeout)
    except (argparse.ArgumentError, ValueError):
        return None  # malformed options: Locust's own parser says what is wrong
    return master if worker else None
