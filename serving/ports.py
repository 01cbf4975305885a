"""The ten ports of the three servers, and who holds a port, so a clash is reported before anything starts."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"

# The one map of which `Ports` field each server answers on, by role: its REST API (REST-JSON and
# REST-binary share it), its gRPC API, and where it describes its model (the metadata API).
SERVING_FIELDS: dict[str, dict[str, str]] = {
    "tfserving": {"rest": "tfserving_rest", "grpc": "tfserving_grpc", "metadata": "tfserving_rest"},
    "torchserve": {"rest": "torchserve_inference", "grpc": "torchserve_grpc",
                   "metadata": "torchserve_management"},
    "triton": {"rest": "triton_http", "grpc": "triton_grpc", "metadata": "triton_http"},
}


def serving_field(server: str, role: str) -> str:
    """The `Ports` field `server` answers `role` on ("rest" | "grpc" | "metadata"; a protocol name also
    works: "rest-json" and "rest-binary" are "rest")."""
    fields_ = SERVING_FIELDS.get(server)
    if fields_ is None:
        raise ValueError(f"unknown server {server!r}: expected one of {', '.join(SERVING_FIELDS)}")
    return fields_["grpc" if role == "grpc" else "metadata" if role == "metadata" else "rest"]


@dataclass(frozen=True)
class Ports:
    """Standard ports by default (as in docker-compose.yml); tests use `Ports.free()`."""

    tfserving_grpc: int = 8500
    tfserving_rest: int = 8501
    torchserve_inference: int = 8080
    torchserve_management: int = 8081
    torchserve_metrics: int = 8082
    torchserve_grpc: int = 7070
    torchserve_grpc_management: int = 7071
    triton_http: int = 8000
    triton_grpc: int = 8001
    triton_metrics: int = 8002

    def __post_init__(self) -> None:
        values = self.to_dict()
        for name, port in values.items():
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(f"Ports.{name} must be an integer port number 1-65535, got {port!r}")
        if len(set(values.values())) != len(values):
            raise ValueError(f"Ports must all differ, got {values}")

    @classmethod
    def free(cls, host: str = LOOPBACK) -> Ports:
        """Distinct ports (one per field) that are free on `host` right now and claimed for us
        (`free_ports`)."""
        return cls(*free_ports(len(fields(cls)), host))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> Ports:
        return cls(**data)

    def serving_port(self, server: str, protocol: str) -> int:
        """The port `server` answers `protocol` on (`SERVING_FIELDS`)."""
        return int(getattr(self, serving_field(server, protocol)))

    def metadata_port(self, server: str) -> int:
        """The port where `server` describes its model (TF Serving's REST API, TorchServe's management)."""
        return int(getattr(self, serving_field(server, "metadata")))

    def of(self, server: str) -> dict[str, int]:
        """The ports one server (`tfserving`, `torchserve` or `triton`) listens on, by role."""
        prefix = f"{server}_"
        picked = {name: port for name, port in self.to_dict().items() if name.startswith(prefix)}
        if not picked:
            raise ValueError(f"unknown server {server!r}: expected 'tfserving', 'torchserve' or 'triton'")
        return picked


def url_host(host: str) -> str:
    """The host as written in a URL or `host:port`: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def connect_host(bind: str) -> str:
    """Where a client on this machine reaches a server bound to `bind` (wildcards: loopback)."""
    return {"0.0.0.0": LOOPBACK, "::": "::1"}.get(bind, bind)


def is_local_address(host: str) -> bool:
    """True when `host` is an address of this machine (or a wildcard), so a server can bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


# Free ports come from below the kernel's ephemeral range, where no outgoing connection takes one
# between our check and the server's bind, and each is claimed machine-wide for a while, so two runs
# (or test workers) starting servers at once never pick the same one.
PORT_FLOOR = 10_000
CLAIM_S = 300.0  # a claimed port is not handed out again for this long: ample for a server to bind it
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOCK_DIR = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
_CLAIMS = Path(_LOCK_DIR, f"inferload-ports-{os.getuid()}.json")


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


@contextlib.contextmanager
def _claims() -> Iterator[dict[str, float]]:
    """The machine-wide claims (port -> when), under an exclusive lock, written back at the end; an
    empty, unshared dict where the file cannot be used (the ports are then only checked free)."""
    try:
        file = open(_CLAIMS, "a+")  # noqa: SIM115 - closed below
    except OSError:
        yield {}
        return
    with file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        try:
            claims = {k: float(v) for k, v in json.loads(file.read() or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            claims = {}
        now = time.time()
        claims = {port: at for port, at in claims.items() if now - at < CLAIM_S}
        yield claims
        file.seek(0)
        file.truncate()
        file.write(json.dumps(claims))


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct ports free on `host` now, claimed for CLAIM_S (see above). Where the range below
    the ephemeral ports is too small, the kernel picks them, as bind to port 0 does."""
    low = _ephemeral_low()
    if low - PORT_FLOOR < 1_000:
        return _kernel_picked(count, host)
    chosen: list[int] = []
    with _claims() as claims:
        candidates = random.Random().sample(range(PORT_FLOOR, low), min(4 * count + 200, low - PORT_FLOOR))
        for port in candidates:
            if str(port) not in claims and is_free(port, host):  # a sample: no port twice
                chosen.append(port)
                if len(chosen) == count:
                    break
        now = time.time()
        claims.update({str(port): now for port in chosen})
    if len(chosen) < count:
        raise OSError(errno.EADDRINUSE, f"fewer than {count} free ports in {PORT_FLOOR}-{low - 1} on {host}")
    return chosen


def _kernel_picked(count: int, host: str) -> list[int]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        chosen = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
            sock.bind((host, 0))
            chosen.append(sock.getsockname()[1])
    return chosen


def is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a listening socket could bind `host:port` now (TIME_WAIT leftovers do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            if exc.errno == errno.EADDRNOTAVAIL:  # not an address here (e.g. another namespace's)
                return True
            raise
    return True


def port_owner(port: int) -> str:
    """'pid 123 (java ...)' for the process listening on the port, or why it cannot be told."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return "unknown process (no permission to list sockets)"
    for conn in connections:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            if conn.pid is None:
                return "unknown process (no permission to see it)"
            try:
                proc = psutil.Process(conn.pid)
                command = " ".join(proc.cmdline())[:160] or proc.name()
            except psutil.Error:
                command = "exited"
            return f"pid {conn.pid} ({command})"
    return "unknown process (no listening socket found; maybe another user's)"


def busy_ports(ports: Ports | Iterable[int], host: str = LOOPBACK) -> list[tuple[int, str]]:
    """The ports that are already bound on `host`, each with a description of its owner."""
    numbers = list(ports.to_dict().values()) if isinstance(ports, Ports) else list(ports)
    return [(port, port_owner(port)) for port in numbers if not is_free(port, host)]
