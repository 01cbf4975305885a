"""Faults on the veth link to a namespace host (tests/netns.py): loss, a bandwidth limit, delay, a cut.

This kernel has no `netem` qdisc, so each fault comes from the tool that does exist here:

- packet loss: `iptables -m statistic --mode random --probability p -j DROP` inside the namespace,
  on its INPUT and OUTPUT chains (both directions of every TCP connection); removed by deleting
  the same rules.
- bandwidth: a `tbf` qdisc on the egress of both ends of the veth pair (requests and responses each
  limited); removed by `tc qdisc del ... root`.
- delay + jitter: `delay_proxy.py` on the namespace host in front of the real server (the load goes
  to the proxy's port); removed by ending the proxy.
- link cut: `ip link set <namespace end> down`: the root end loses its carrier and every packet is
  dropped silently, as with a pulled cable (no reset, no ICMP); restored by `ip link set ... up`.

`later(fault, after_s, lasting_s)` puts any of them in place mid-run (a timer thread) and takes it
away again.

Every helper is a context manager that removes what it made, also when the block fails; the
namespace's own removal (netns.remove) would take all of them with it anyway.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from netns import NetnsHost

PROXY = Path(__file__).resolve().with_name("delay_proxy.py")
_COMMENT = "inferload-fault"


class FaultError(RuntimeError):
    """A fault could not be put in place (the command and its stderr are in the message)."""


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise FaultError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")


def missing_tools() -> str | None:
    """Why these faults cannot be made here (None: they can)."""
    import shutil

    for tool, package in (("tc", "iproute2"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install {package})"
    return None


_CHAINS = {"both": ("INPUT", "OUTPUT"), "requests": ("INPUT",), "responses": ("OUTPUT",)}


def _loss_rules(probability: float, direction: str) -> list[list[str]]:
    match = ["-p", "tcp", "-m", "statistic", "--mode", "random", "--probability", f"{probability:.6f}",
             "-m", "comment", "--comment", _COMMENT, "-j", "DROP"]
    return [[chain, *match] for chain in _CHAINS[direction]]


@contextmanager
def packet_loss(host: NetnsHost, probability: float, direction: str = "both") -> Iterator[None]:
    """Drop each TCP packet with `probability` (0 < p <= 1): into the namespace host ("requests"),
    out of it ("responses": the server does the work, its answer is lost), or both ways."""
    if not 0 < probability <= 1:
        raise ValueError(f"loss probability must be in (0, 1], got {probability}")
    rules = _loss_rules(probability, direction)
    added: list[list[str]] = []
    try:
        for rule in rules:
            _run(host.argv(["iptables", "-w", "-A", *rule]))
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run(host.argv(["iptables", "-w", "-D", *rule]), capture_output=True, timeout=30)


def burst_bytes(kbit_per_s: int) -> int:
    """tbf's bucket in `bandwidth_limit`: 10 ms worth of bytes, at least one packet. An idle link
    sends this much at once; everything beyond it goes at the rate."""
    return max(1600, kbit_per_s * 1000 // 8 // 100)


@contextmanager
def bandwidth_limit(host: NetnsHost, kbit_per_s: int, *, queue_ms: int = 2000) -> Iterator[None]:
    """Limit each direction of the link to `kbit_per_s` (tbf on both ends' egress); a packet may
    queue up to `queue_ms` before tbf drops it."""
    burst = burst_bytes(kbit_per_s)
    shaped: list[list[str]] = []
    # the root end's egress carries the requests, the namespace end's the responses
    ends = ((["tc"], host.veth), (host.argv(["tc"]), host.peer))
    try:
        for tc, device in ends:
            _run([*tc, "qdisc", "replace", "dev", device, "root", "tbf", "rate", f"{kbit_per_s}kbit",
                  "burst", str(burst), "latency", f"{queue_ms}ms"])
            shaped.append([*tc, "qdisc", "del", "dev", device, "root"])
        yield
    finally:
        for command in shaped:
            subprocess.run(command, capture_output=True, timeout=30)


@contextmanager
def link_cut(host: NetnsHost) -> Iterator[None]:
    """The namespace's end of the veth link down for the block (a silent blackhole), then up again."""
    _run(host.argv(["ip", "link", "set", host.peer, "down"]))
    try:
        yield
    finally:
        _run(host.argv(["ip", "link", "set", host.peer, "up"]))


def run_started(out: Path) -> Callable[[], bool]:
    """True once the load run writing into `out` has started its schedule (its records file exists)."""
    return lambda: any(out.glob("requests*.jsonl"))


@dataclass
class FaultWindow:
    """When the fault was in place, on the clock of the records' times (CLOCK_MONOTONIC, ns; 0: not yet)."""

    start_ns: int = 0
    end_ns: int = 0


@contextmanager
def later(fault: Callable[[], AbstractContextManager[object]], after_s: float, lasting_s: float | None = None,
          *, since: Callable[[], bool] | None = None) -> Iterator[FaultWindow]:
    """Put `fault()` in place `after_s` seconds into the block (or after `since()` first says True),
    for `lasting_s` (None: to the block's end); it is always undone by the time the block ends.
    Yields the window the fault was in place, filled as it happens: on a busy machine the timer thread
    may run late, so a test judges requests by these times, not by the plan. Errors of the fault's own
    commands are raised at the end of the block."""
    stop = threading.Event()
    failures: list[BaseException] = []
    window = FaultWindow()

    def run() -> None:
        while since is not None and not since():
            if stop.wait(0.01):
                return
        if stop.wait(after_s):
            return
        try:
            with fault():
                window.start_ns = time.monotonic_ns()
                stop.wait(lasting_s)
            window.end_ns = time.monotonic_ns()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(exc)

    timer = threading.Thread(target=run, name="fault-window", daemon=True)
    timer.start()
    try:
        yield window
    finally:
        stop.set()
        timer.join(timeout=60)
    if failures:
        raise failures[0]


@dataclass(frozen=True)
class Proxy:
    """A delay proxy running on the namespace host: load sent to `address:port` reaches the upstream."""

    address: str
    port: int


@contextmanager
def delay_proxy(host: NetnsHost, upstream_port: int, delay_ms: float, *, jitter_ms: float = 0.0,
                upstream_host: str | None = None, direction: str = "down", seed: int = 0) -> Iterator[Proxy]:
    """`delay_proxy.py` on the namespace host, listening on its address (a free port) and forwarding
    to `upstream_host:upstream_port` (default: the same address) with the delay added."""
    argv = [sys.executable, str(PROXY), "--listen", f"{host.address}:0",
            "--upstream", f"{upstream_host or host.address}:{upstream_port}",
            "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms), "--direction", direction,
            "--seed", str(seed)]
    process = host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 3 or line[0] != "listening":
            process.kill()
            raise FaultError(f"the delay proxy did not start: {process.communicate(timeout=10)[1].strip()}")
        yield Proxy(line[1], int(line[2]))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
