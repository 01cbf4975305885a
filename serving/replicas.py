"""N replicas of one server behind a real nginx (serving/balancer.py), as one "running servers" object.

The balancer listens on the server's client-facing ports (REST and gRPC of `ports`), so the load goes
where it always goes; each replica is an ordinary `serving.stack` with its own ports, state dir and,
where the server CPU set has a CPU per replica, its own slice of that set. Replica 1 keeps the other
ports of `ports` (TorchServe's management and metrics), so the served model is described where the
load generator looks for it. `alive` is true only while every replica and nginx run: a replica that
dies mid-cell fails the cell.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from inferload_formats import SERVERS
from serving import balancer as nginx
from serving.metrics_file import MonitoredServer
from serving.ports import LOOPBACK, Ports, serving_field
from serving.settings import ServerSettings
from serving.stack import Stack, StackError, up

# Which Ports fields carry client traffic, by server: (REST, gRPC), from the one map (serving.ports).
FRONT_FIELDS: dict[str, tuple[str, str]] = {
    server: (serving_field(server, "rest"), serving_field(server, "grpc")) for server in SERVERS}
MAX_REPLICAS = 16


@dataclass(frozen=True)
class Topology:
    """How one server is deployed: `replicas` instances behind nginx (`balancer` "nginx") or alone."""

    replicas: int = 1
    balancer: str = "none"  # "none" | "nginx"
    policy: nginx.Policy = "round_robin"
    cache: nginx.CacheSettings | None = None
    tls: nginx.BalancerTls | None = None  # nginx terminates TLS; the replicas behind it stay plaintext

    @property
    def plain(self) -> bool:
        """One server, nothing in front: an ordinary stack."""
        return self.replicas == 1 and self.balancer == "none"


def replica_ports(front: Ports, server: str, replicas: int) -> list[Ports]:
    """Ports per replica, none of them the balancer's front ports; replica 1 keeps the rest of `front`."""
    taken = set(front.to_dict().values())
    chosen: list[Ports] = []
    rest_field, grpc_field = FRONT_FIELDS[server]
    for index in range(replicas):
        for _ in range(100):
            fresh = Ports.free()
            values = set(fresh.to_dict().values())
            if values & taken:
                continue
            if index == 0:
                candidate = replace(front, **{rest_field: getattr(fresh, rest_field),
                                             grpc_field: getattr(fresh, grpc_field)})
                if len(set(candidate.to_dict().values())) != len(candidate.to_dict()):
                    continue
            else:
                candidate = fresh
            taken |= set(candidate.of(server).values())
            chosen.append(candidate)
            break
        else:
            raise StackError(f"could not find free ports for {server} replica {index + 1}")
    return chosen


def split_cpus(cpus: tuple[int, ...] | None, replicas: int) -> list[tuple[int, ...] | None]:
    """Each replica its own slice of the server CPU set when it has a CPU per replica; else all share it."""
    if cpus is None or len(cpus) < replicas:
        return [cpus] * replicas
    size = len(cpus) // replicas
    return [tuple(cpus[i * size:(i + 1) * size]) if i < replicas - 1 else tuple(cpus[i * size:])
            for i in range(replicas)]



def _wait_until_settled(log: Path, *, quiet_s: float = 0.1, timeout_s: float = 2.0) -> None:
    """Wait until nginx's access log stops growing: it writes a request's line in its log phase, after
    the response went out, so the client can see the last answer before its line is in the file."""
    deadline = time.monotonic() + timeout_s
    size = log.stat().st_size if log.exists() else -1
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = log.stat().st_size if log.exists() else -1
        if now == size:
            return
        size = now

class ReplicatedServers:
    """N stacks of one server and the nginx in front of them."""

    def __init__(self, server: str, stacks: list[Stack], balancer: nginx.Balancer | None) -> None:
        self.server = server
        self.stacks = stacks
        self.balancer = balancer

    @property
    def tfserving_kind(self) -> str | None:
        return self.stacks[0].tfserving_kind if self.stacks else None

    @property
    def triton_kind(self) -> str | None:
        return self.stacks[0].triton_kind if self.stacks else None

    def replica_name(self, index: int) -> str:
        """`tfserving` for a single replica (the server-side view reads it as usual), else `tfserving-2`."""
        return self.server if len(self.stacks) == 1 else f"{self.server}-{index + 1}"

    def alive(self, server: str) -> bool:
        if server != self.server or not self.stacks:
            return False
        replicas_up = all(stack.alive(server) for stack in self.stacks)
        return replicas_up and (self.balancer is None or self.balancer.alive())

    def dead(self) -> list[str]:
        """Which parts are not running (for error messages)."""
        gone = [self.replica_name(i) for i, s in enumerate(self.stacks) if not s.alive(self.server)]
        if self.balancer is not None and not self.balancer.alive():
            gone.append("nginx")
        return gone

    def monitored(self) -> list[MonitoredServer]:
        """Every replica under its own name, and nginx (CPU only: it exports no metrics)."""
        watched = []
        for index, stack in enumerate(self.stacks):
            for entry in stack.monitored():
                watched.append(replace(entry, name=self.replica_name(index)))
        if self.balancer is not None:
            watched.append(MonitoredServer(name="nginx", kind="nginx", metrics_url=None,
                                           pid=self.balancer.pid))
        return watched

    @contextlib.contextmanager
    def cell_files(self, cell_dir: Path) -> Iterator[None]:
        """Around one cell: a cache starts empty (nginx's, and each replica's own, Triton's response cache);
        afterwards the cell keeps nginx.conf and its access log."""
        for stack in self.stacks:
            stack.empty_caches()
        if self.balancer is None:
            yield
            return
        if self.balancer.settings.cache is not None:
            self.balancer = nginx.restart_with_empty_cache(self.balancer)
        log = self.balancer.access_log
        start = log.stat().st_size if log.exists() else 0
        try:
            yield
        finally:
            cell_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.balancer.config_path, cell_dir / "nginx.conf")
            _wait_until_settled(log)
            if log.exists():
                with open(log, "rb") as source, open(cell_dir / "balancer_access.jsonl", "wb") as target:
                    source.seek(start)
                    shutil.copyfileobj(source, target)

    def down(self) -> list[str]:
        """Stop nginx, then every replica; every failure is reported after all were tried."""
        failures, stopped = [], []
        if self.balancer is not None:
            try:
                self.balancer.stop()
                stopped.append("nginx")
            except Exception as exc:  # noqa: BLE001 - report after stopping the replicas too
                failures.append(f"nginx: {exc}")
            self.balancer = None
        for index, stack in enumerate(self.stacks):
            try:
                stack.down()
                stopped.append(self.replica_name(index))
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{self.replica_name(index)}: {exc}")
        self.stacks = []
        if failures:
            raise StackError("could not stop every replica:\n  - " + "\n  - ".join(failures))
        return stopped


def up_replicated(
    artifacts: Path,
    *,
    server: str,
    settings: ServerSettings,
    ports: Ports,
    state_dir: Path,
    topology: Topology,
    timeout_s: float = 180.0,
    host: str = LOOPBACK,
) -> ReplicatedServers:
    """Start `topology.replicas` instances of `server` (concurrently) and nginx in front; all or nothing."""
    if not 1 <= topology.replicas <= MAX_REPLICAS:
        raise StackError(f"replicas must be 1-{MAX_REPLICAS}, got {topology.replicas}")
    if topology.balancer != "nginx":
        raise StackError("replicas need a balancer: set balancer.kind to nginx")
    nginx.nginx_binary()  # missing nginx: say so before starting any server
    state_dir = Path(state_dir)
    all_ports = replica_ports(ports, server, topology.replicas)
    cpu_sets = split_cpus(settings.cpus, topology.replicas)
    servers = ReplicatedServers(server, [], None)

    def start(index: int) -> Stack:
        replica_settings = settings.model_copy(update={"cpus": cpu_sets[index]})
        replica_dir = state_dir / f"replica-{index + 1}"
        with contextlib.suppress(Exception):  # left behind by a killed run: stop it
            from serving.stack import down

            down(replica_dir)
        return up(artifacts, servers=[server], settings=replica_settings, ports=all_ports[index],
                  state_dir=replica_dir, timeout_s=timeout_s, host=host)

    try:
        with ThreadPoolExecutor(max_workers=topology.replicas) as pool:
            futures = [pool.submit(start, index) for index in range(topology.replicas)]
            errors = []
            for future in futures:
                try:
                    servers.stacks.append(future.result())
                except Exception as exc:  # noqa: BLE001 - all replicas are collected, then cleaned up
                    errors.append(exc)
            if errors:
                raise errors[0]
        rest_field, grpc_field = FRONT_FIELDS[server]
        settings_nginx = nginx.BalancerSettings(
            rest_port=getattr(ports, rest_field),
            grpc_port=getattr(ports, grpc_field),
            rest_upstreams=tuple(nginx.Upstream(LOOPBACK, getattr(p, rest_field)) for p in all_ports),
            grpc_upstreams=tuple(nginx.Upstream(LOOPBACK, getattr(p, grpc_field)) for p in all_ports),
            policy=topology.policy,
            listen_host=host,
            cache=topology.cache,
            tls=topology.tls,
        )
        servers.balancer = nginx.start(settings_nginx, state_dir / "nginx")
    except BaseException:
        with contextlib.suppress(Exception):
            servers.down()
        raise
    return servers
