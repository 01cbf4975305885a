"""A second host for tests: a network namespace joined to this one by a veth pair.

Tests that measure "a remote server" start it inside the namespace, bound to the namespace's address,
and send load from the root namespace across the veth link, so no traffic ever leaves the machine.
Addresses come from the benchmarking range 198.18.0.0/15 (RFC 2544): a /30 per host, `.1` on the
root side, `.2` inside. Everything is removed on teardown, also when the test fails; namespaces and
links left by a killed run (same prefix) are removed before a new one is made.

    with netns_host("h1") as host:
        host.run(["ip", "addr"])                      # a command inside the namespace
        server = host.popen(["python", "-m", "http.server", "--bind", host.address, "8000"])

Names start with a prefix (INFERLOAD_NETNS_PREFIX, default "ilns", then the pytest-xdist worker's
number, then the test area's letter), so parallel sessions and workers never touch each other's
namespaces; the /30 is picked and claimed under a machine-wide lock. Needs root and iproute2's `ip`;
`skip_reason()` says why a test cannot run instead.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

BENCHMARK_NET = ipaddress.ip_network("198.18.0.0/15")
DEFAULT_PREFIX = "ilns"
# one path for every process on the machine, whatever its TMPDIR
LOCK_DIR = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
SUBNET_LOCK = os.path.join(LOCK_DIR, "inferload-netns-subnets.lock")
_MAX_IFNAME = 15  # Linux interface names


def default_prefix(base: str | None = None) -> str:
    """`base` (INFERLOAD_NETNS_PREFIX, default "ilns") and this pytest-xdist worker's number ("ilns1" on
    worker gw1; no number outside xdist): each worker names its own namespaces."""
    base = base or os.environ.get("INFERLOAD_NETNS_PREFIX", DEFAULT_PREFIX)
    return base + os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")


@contextmanager
def _subnet_lock() -> Iterator[None]:
    """Held from picking a /30 until its root-side address is added (which marks it used): two processes
    picking at once would otherwise both see it free."""
    with open(SUBNET_LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class NetnsError(RuntimeError):
    """An `ip` command failed; the message carries the command and its stderr."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def skip_reason() -> str | None:
    """Why network-namespace tests cannot run here (None: they can)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN); run the tests as root"
    return None


@dataclass(frozen=True)
class NetnsHost:
    """A namespace "host": its name, its address, and the root side's address on the same link."""

    name: str
    veth: str  # root-side interface
    peer: str  # interface inside the namespace
    address: str  # the namespace's address: servers bind it, load is sent to it
    local_address: str  # the root namespace's end of the link

    def argv(self, command: Sequence[str]) -> list[str]:
        """`command` as run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, command: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        return subprocess.run(self.argv(command), **kwargs)

    def popen(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(command), **kwargs)

    def pids(self) -> list[int]:
        """Processes running inside the namespace."""
        done = _ip("netns", "pids", self.name, check=False)
        return [int(pid) for pid in done.stdout.split()] if done.returncode == 0 else []


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Networks of every address and route in the root namespace (to pick a /30 nobody uses)."""
    used = []
    for line in _ip("-o", "addr", "show").stdout.splitlines() + _ip("route", "show").stdout.splitlines():
        for word in line.split():
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    return used


def _free_subnet(prefix: str) -> ipaddress.IPv4Network:
    """A /30 of 198.18.0.0/15 that overlaps no address or route here; the start depends on the prefix
    so sessions with different prefixes rarely even try the same one."""
    used = [net for net in _used_networks() if net.version == 4]
    subnets = list(BENCHMARK_NET.subnets(new_prefix=30))
    start = zlib.crc32(prefix.encode()) % len(subnets)
    for offset in range(len(subnets)):
        candidate = subnets[(start + offset * 97) % len(subnets)]
        if not any(candidate.overlaps(net) for net in used):  # type: ignore[arg-type]
            return candidate  # type: ignore[return-value]
    raise NetnsError("no free /30 left in 198.18.0.0/15")


def _kill_inside(name: str, grace_s: float = 10.0) -> None:
    """SIGTERM everything still running in the namespace, then SIGKILL what is left."""
    def pids() -> list[int]:
        done = _ip("netns", "pids", name, check=False)
        return [int(pid) for pid in done.stdout.split()] if done.returncode == 0 else []

    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        left = pids()
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = pids()
        if not left:
            return


def remove(name: str, veth: str) -> None:
    """Remove a namespace (after ending what runs in it) and its veth pair. Idempotent."""
    namespaces = _ip("netns", "list", check=False).stdout.split()
    if name in namespaces:
        _kill_inside(name)
        _ip("netns", "delete", name, check=False)
    if _ip("link", "show", veth, check=False).returncode == 0:
        _ip("link", "delete", veth, check=False)  # deleting one end removes the pair


def remove_stale(prefix: str) -> list[str]:
    """Remove namespaces and links with this prefix left by an earlier, killed run; returns their names."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{prefix}-ns"):
            remove(name, f"{prefix}v{name.removeprefix(f'{prefix}-ns')}")
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        fields = line.split(":")
        if len(fields) > 1:
            link = fields[1].strip().split("@")[0]
            if link.startswith(f"{prefix}v"):
                _ip("link", "delete", link, check=False)
                removed.append(link)
    return removed


def create(prefix: str, index: int = 0) -> NetnsHost:
    """Make namespace `<prefix>-ns<index>` with loopback up, linked to the root by a veth /30."""
    name = f"{prefix}-ns{index}"
    veth, peer = f"{prefix}v{index}", f"{prefix}p{index}"
    if len(veth) > _MAX_IFNAME or len(peer) > _MAX_IFNAME:
        raise ValueError(f"netns prefix {prefix!r} too long: interface names are at most {_MAX_IFNAME} chars")
    try:
        _ip("netns", "add", name)
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", name)
        with _subnet_lock():
            subnet = _free_subnet(f"{prefix}{index}")
            local, inside = (str(host) for host in list(subnet.hosts())[:2])
            _ip("addr", "add", f"{local}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{inside}/30", "dev", peer)
        _ip("netns", "exec", name, "ip", "link", "set", peer, "up")
    except BaseException:
        remove(name, veth)
        raise
    return NetnsHost(name=name, veth=veth, peer=peer, address=inside, local_address=local)


@contextmanager
def netns_host(prefix: str | None = None, index: int = 0) -> Iterator[NetnsHost]:
    """A namespace host for the duration of the block; removed afterwards, also on failure."""
    prefix = prefix or default_prefix()
    if index == 0:
        remove_stale(prefix)
    host = create(prefix, index)
    try:
        yield host
    finally:
        remove(host.name, host.veth)


def exists(host: NetnsHost) -> bool:
    """True while the namespace or its root-side link is still there."""
    namespaces = _ip("netns", "list", check=False).stdout.split()
    return host.name in namespaces or _ip("link", "show", host.veth, check=False).returncode == 0
