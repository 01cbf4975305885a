"""Three "hosts" on this machine: a server host and two generator hosts, as network namespaces.

Built on tests/netns.py (each namespace gets a veth /30 to the root namespace). On top of that the
server host gets one service address (a /32 on its loopback) and a veth link to each generator host,
whose route to the service address goes over that link: generators reach the servers and the Locust
master on the server host, never each other, and nothing is routed through the root namespace.
Addresses come from 198.18.0.0/15. Removing the namespaces (always, also on failure) removes the
links inside them.

Each process can be given its own host name (a UTS namespace, `unshare --uts`), as on real hosts:
record headers name the host that sent them.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netns import BENCHMARK_NET, NetnsHost, _free_subnet, netns_host


@dataclass(frozen=True)
class LabHost:
    """One namespace host with its host name; commands run inside its namespace and UTS name."""

    netns: NetnsHost
    hostname: str
    address: str  # this host's address on its link to the server host (the server host: the service one)

    def argv(self, command: Sequence[str]) -> list[str]:
        inner = ["unshare", "--uts", "sh", "-c", f'hostname "{self.hostname}" && exec "$@"', "sh", *command]
        return self.netns.argv(inner)

    def run(self, command: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        return subprocess.run(self.argv(command), **kwargs)

    def popen(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(command), **kwargs)


@dataclass(frozen=True)
class Lab:
    server: LabHost  # runs both servers and the Locust master, at server.address
    generators: tuple[LabHost, ...]


@dataclass(frozen=True)
class ServerHost:
    """The lab with both servers running on its server host."""

    lab: Lab
    grpc_port: int  # TF Serving (tfs-compat) gRPC on the server host's address


def _ip(netns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True, text=True, timeout=30)


def _subnets(prefix: str, taken: list[ipaddress.IPv4Network], count: int) -> list[ipaddress.IPv4Network]:
    """`count` /30s of the benchmarking range that overlap nothing here and nothing already taken."""
    found: list[ipaddress.IPv4Network] = []
    salt = 0
    while len(found) < count:
        candidate = _free_subnet(f"{prefix}-lab-{salt}")
        salt += 1
        if not any(candidate.overlaps(net) for net in taken + found):
            found.append(candidate)
        if salt > 1000:
            raise RuntimeError(f"no free /30 left in {BENCHMARK_NET}")
    return found


@contextmanager
def lab(prefix: str, generators: int = 2) -> Iterator[Lab]:
    """A server host and `generators` generator hosts; every namespace removed afterwards."""
    with ExitStack() as stack:
        hosts = [stack.enter_context(netns_host(prefix, index)) for index in range(generators + 1)]
        server, gens = hosts[0], hosts[1:]
        taken = [ipaddress.ip_network(f"{h.address}/30", strict=False) for h in hosts]
        service_net, *links = _subnets(prefix, taken, generators + 1)
        service = str(next(service_net.hosts()))
        _ip(server.name, "addr", "add", f"{service}/32", "dev", "lo")
        lab_gens = []
        for index, (gen, link) in enumerate(zip(gens, links, strict=True), start=1):
            near, far = (str(address) for address in list(link.hosts())[:2])
            outside, inside = f"{prefix}s{index}", f"{prefix}g{index}"
            for link_name in (outside, inside):  # only left in the root namespace if a move failed
                stack.callback(subprocess.run, ["ip", "link", "delete", link_name], capture_output=True)
            subprocess.run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside], check=True,
                           capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "set", outside, "netns", server.name], check=True,
                           capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "set", inside, "netns", gen.name], check=True, capture_output=True,
                           timeout=30)
            _ip(server.name, "addr", "add", f"{near}/30", "dev", outside)
            _ip(server.name, "link", "set", outside, "up")
            _ip(gen.name, "addr", "add", f"{far}/30", "dev", inside)
            _ip(gen.name, "link", "set", inside, "up")
            _ip(gen.name, "route", "add", f"{service}/32", "via", near)
            lab_gens.append(LabHost(gen, f"{prefix}-gen{index}", far))
        yield Lab(server=LabHost(server, f"{prefix}-server", service), generators=tuple(lab_gens))


def finish(processes: list[subprocess.Popen[bytes]], timeout_s: float = 240) -> None:
    """Wait for `processes` (together at most `timeout_s`); kill any still running: a process that leads
    its own session (a worker host) with its whole session."""
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait()


def logs(*paths: Path) -> str:
    """The tail of each log that exists, for an assertion's message."""
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in paths if p.exists())
