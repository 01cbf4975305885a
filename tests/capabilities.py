"""What this machine can do for the tests, and what a test does where it cannot.

Some tests need something a machine may lack: nginx, network namespaces, docker-compose, ... Each such
need is one named capability here, with the check that finds it and the words that say how to get it.
A test asks for it with the marker or the call:

    pytestmark = pytest.mark.needs("netns", "unshare")     # checked before each test of the module
    need("kubectl")                                        # inside a test or fixture

Where the capability is missing, the test is skipped with the reason, unless the environment variable
INFERLOAD_REQUIRE names it (a comma-separated list of the names below, or `all`): then the test fails
with the same reason. `.ci/run` sets it, so CI cannot stay green by skipping whole directories on a
machine where `make setup` could not install something.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
from netns import skip_reason as _netns_reason

REQUIRE_VARIABLE = "INFERLOAD_REQUIRE"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _nginx() -> str | None:
    from serving.balancer import BalancerError, nginx_binary

    try:
        nginx_binary()
    except BalancerError as exc:
        return f"{exc} (`make setup` installs it as root where apt-get exists)"
    return None


def _on_path(program: str, hint: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if shutil.which(program) else f"`{program}` is not installed ({hint})"

    return check


def _cgroup_v1() -> str | None:
    writable = (
        os.geteuid() == 0
        and not (CGROUP_ROOT / "cgroup.controllers").exists()
        and os.access(CGROUP_ROOT / "cpuacct", os.W_OK)
        and os.access(CGROUP_ROOT / "memory", os.W_OK)
    )
    return None if writable else "needs root and a writable cgroup v1 hierarchy (cpuacct, memory)"


def _ipv6() -> str | None:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return "this machine has no IPv6 loopback (::1)"
    return None


def _cpus_0_and_1() -> str | None:
    cpus = os.sched_getaffinity(0)
    return None if {0, 1} <= cpus else f"needs CPUs 0 and 1 to pin to (this process may use {sorted(cpus)})"


def _tmpfs() -> str | None:
    if os.geteuid() != 0:
        return "mounting a small tmpfs (a results disk that fills up) needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount are not installed (util-linux)"
    return None


def chromium_binary() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def _chromium() -> str | None:
    if chromium_binary():
        return None
    return "no headless Chromium (apt-get install chromium; `make setup` installs it as root)"


CAPABILITIES: dict[str, Callable[[], str | None]] = {
    "nginx": _nginx,
    "netns": _netns_reason,
    "unshare": _on_path("unshare", "util-linux"),
    "tc": _on_path("tc", "iproute2: traffic shaping on namespace links"),
    "iptables": _on_path("iptables", "apt-get install iptables"),
    "compose": _on_path("docker-compose", "apt-get install docker-compose; `make setup` installs it as root"),
    "kubectl": _on_path("kubectl", "the Python renderer is then not cross-checked against kustomize"),
    "cgroup-v1": _cgroup_v1,
    "ipv6": _ipv6,
    "cpus-0-1": _cpus_0_and_1,
    "chromium": _chromium,
    "tmpfs": _tmpfs,
}


def required() -> frozenset[str]:
    """The capabilities INFERLOAD_REQUIRE names (`all`: every one); an unknown name is a usage error."""
    names = {n.strip() for n in os.environ.get(REQUIRE_VARIABLE, "").split(",") if n.strip()}
    if "all" in names:
        return frozenset(CAPABILITIES)
    unknown = names - CAPABILITIES.keys()
    if unknown:
        raise pytest.UsageError(
            f"{REQUIRE_VARIABLE} names unknown capabilities {sorted(unknown)}; "
            f"known: {', '.join(CAPABILITIES)} (or all)"
        )
    return frozenset(names)


@functools.cache
def missing(name: str) -> str | None:
    """Why this machine lacks the capability `name` (None: it has it)."""
    if name not in CAPABILITIES:
        raise KeyError(f"unknown capability {name!r}; known: {', '.join(CAPABILITIES)}")
    return CAPABILITIES[name]()


def unavailable(name: str, reason: str) -> NoReturn:
    """Skip the running test for want of `name`, or fail it when INFERLOAD_REQUIRE names `name`."""
    if name in required():
        pytest.fail(f"{REQUIRE_VARIABLE} requires {name}, but: {reason}", pytrace=False)
    pytest.skip(f"{name}: {reason}")


def need(*names: str) -> None:
    """Go on only where the machine has every capability named (see the module docstring)."""
    for name in names:
        reason = missing(name)
        if reason is not None:
            unavailable(name, reason)
