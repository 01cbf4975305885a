"""Bring the servers up together, record them in `servers.json`, and take them down from any process.

`up` checks everything it can before starting anything (artifacts, Java, TF Serving kind, ports, a
stack already running in the state dir) and says what to do about each problem. The state file holds
pids, ports, kinds and log files, so `down(state_dir)` in another process (the CLI) stops exactly
what `up` started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from inferload_formats import SERVERS
from models.artifacts import MODEL_NAME, ArtifactLayout
from serving import tfserving, torchserve, triton
from serving.cpusets import CpuSetError, check_available, format_cpu_list
from serving.metrics_file import MonitoredServer
from serving.ports import LOOPBACK, Ports, busy_ports, connect_host, is_local_address, url_host
from serving.processes import HealthCheck, LaunchSpec, ProcessHandle, spawn, stop, wait_healthy
from serving.prometheus import metrics_url
from serving.settings import ServerSettings

STATE_FILE = "servers.json"
STATE_SCHEMA = "inferload.servers"
STATE_VERSION = 1
DEFAULT_STATE_DIR = Path("logs/servers")

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


class StackError(RuntimeError):
    """`up` cannot start the servers; the message lists each problem with what to do about it."""


@dataclass(frozen=True)
class ServerInfo:
    """One running server as recorded in servers.json."""

    name: str
    kind: str  # "torchserve", "tensorflow_model_server", "tfs-compat", "tritonserver" or "pytriton"
    pid: int
    create_time: float
    ports: dict[str, int]
    endpoints: dict[str, str]
    log_file: str
    workdir: str
    tmpdir: str | None = None

    @property
    def handle(self) -> ProcessHandle:
        return ProcessHandle(self.pid, self.create_time)


def endpoints(name: str, ports: Ports, bind: str = LOOPBACK, *, tls: bool = False) -> dict[str, str]:
    """Where clients reach a server, by protocol (for printing and for the state file).

    A wildcard bind (0.0.0.0, ::) is shown as loopback: other hosts use one of this machine's addresses.
    With `tls`, TorchServe's REST and both gRPC APIs speak TLS (TF Serving's REST API never does).
    """
    host = url_host(connect_host(bind))
    rest, grpc = ports.serving_port(name, "rest"), ports.serving_port(name, "grpc")
    scheme = "grpcs://" if tls else ""
    if name == "tfserving":
        return {
            "rest": f"http://{host}:{rest}/v1/models/{MODEL_NAME}:predict",
            "grpc": f"{scheme}{host}:{grpc}",
        }
    if name == "triton":
        return {
            "rest": f"http://{host}:{ports.triton_http}/v2/models/{MODEL_NAME}/infer",
            "grpc": f"{host}:{ports.triton_grpc}",
            "metadata": f"http://{host}:{ports.triton_http}/v2/models/{MODEL_NAME}",
            "metrics": f"http://{host}:{ports.triton_metrics}/metrics",
        }
    http = "https" if tls else "http"
    return {
        "rest": f"{http}://{host}:{rest}/predictions/{MODEL_NAME}",
        "grpc": f"{scheme}{host}:{grpc}",
        "management": f"{http}://{host}:{ports.torchserve_management}/models/{MODEL_NAME}",
        "metrics": f"http://{host}:{ports.torchserve_metrics}/metrics",
    }


class Stack:
    """The running servers of one state dir: stop, restart, and ask whether one is alive."""

    def __init__(
        self,
        *,
        artifacts: ArtifactLayout,
        settings: ServerSettings,
        ports: Ports,
        state_dir: Path,
        servers: dict[str, ServerInfo],
        host: str = LOOPBACK,
    ) -> None:
        self.host = host  # the address the servers bind (tfs-compat and TorchServe)
        self.artifacts = artifacts
        self.settings = settings
        self.ports = ports
        self.state_dir = state_dir
        self.servers = servers

    @property
    def tfserving_kind(self) -> str | None:
        """`tensorflow_model_server` or `tfs-compat` (None when TF Serving is not part of the stack)."""
        server = self.servers.get("tfserving")
        return server.kind if server else None

    @property
    def triton_kind(self) -> str | None:
        """`tritonserver` (on PATH) or `pytriton` (the wheel's binary); None without Triton."""
        server = self.servers.get("triton")
        return server.kind if server else None

    def kind_of(self, server: str) -> str | None:
        """The kind of one server of the stack (what ran: for records and reports)."""
        info = self.servers.get(server)
        return info.kind if info else None

    @property
    def info(self) -> dict[str, object]:
        """What ran, where, with which settings: the content of servers.json."""
        return {
            "schema": STATE_SCHEMA,
            "schema_version": STATE_VERSION,
            "artifacts": str(self.artifacts.root),
            "tfserving_kind": self.tfserving_kind,
            "triton_kind": self.triton_kind,
            "settings": self.settings.model_dump(),
            "ports": self.ports.to_dict(),
            "bind": self.host,
            "servers": {name: asdict(server) for name, server in self.servers.items()},
        }

    def monitored(self) -> list[MonitoredServer]:
        """The running servers as the monitor watches them: local processes with their metrics URL."""
        return [
            MonitoredServer(
                name=name,
                kind=server.kind,
                metrics_url=metrics_url(name, server.ports, url_host(connect_host(self.host))),
                pid=server.pid,
            )
            for name, server in self.servers.items()
        ]

    def alive(self, server: str) -> bool:
        """True while the server's main process runs (health is not checked: that is `healthy`)."""
        return server in self.servers and self.servers[server].handle.alive()

    def healthy(self, server: str) -> bool:
        return self.alive(server) and _health_check(
            server, self.ports, self.settings, self.host, self.state_dir)() is None

    def down(self) -> list[str]:
        """Stop every server, release its ports, remove its temp dir and the state file. Idempotent."""
        stopped, failures = [], []
        names = list(self.servers)
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:  # both shut down at once
            outcomes = {name: pool.submit(self._stop_one, name) for name in names}
        for name, outcome in outcomes.items():
            if outcome.exception() is None:
                stopped.append(name)
            else:  # the others were still stopped; report every failure
                failures.append(f"{name}: {outcome.exception()}")
        if failures:
            self._save()
            raise StackError("could not stop every server:\n  - " + "\n  - ".join(failures))
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        return stopped

    def restart(self, server: str, *, timeout_s: float = 180.0, progress: Progress | None = None) -> None:
        """Stop one server and start it again with the same settings and ports; wait until healthy."""
        if server not in self.servers:
            raise StackError(f"{server} is not part of this stack (it has {', '.join(self.servers)})")
        kind = self.servers[server].kind
        self._stop_one(server)
        self._save()
        self.servers[server] = _start(
            server, kind, self.artifacts, self.settings, self.ports, self.state_dir, timeout_s, progress,
            self.host,
        )
        self._save()

    def empty_caches(self) -> None:
        """Empty the servers' own caches: Triton's response cache lives in its process, so it restarts."""
        if "triton" in self.servers and self.settings.triton_response_cache:
            self.restart("triton")

    @contextlib.contextmanager
    def cell_files(self, cell_dir: Path) -> Iterator[None]:
        """Around one cell (the runner's hook): a server-side cache starts empty, as nginx's does."""
        self.empty_caches()
        yield

    def _stop_one(self, name: str) -> None:
        server = self.servers[name]
        stop(server.handle, name=name, ports=server.ports.values(), host=self.host)
        if server.tmpdir:
            shutil.rmtree(server.tmpdir, ignore_errors=True)
        del self.servers[name]

    def _save(self) -> None:
        write_state(self.state_dir, self.info)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def up(
    artifacts: ArtifactLayout | Path | str,
    *,
    servers: Iterable[str] = SERVERS,
    settings: ServerSettings | None = None,
    ports: Ports | None = None,
    state_dir: Path | str = DEFAULT_STATE_DIR,
    timeout_s: float = 180.0,
    progress: Progress | None = None,
    host: str = LOOPBACK,
) -> Stack:
    """Check, start the servers concurrently, wait until all are healthy, and record them in servers.json.

    `host` is the address tfs-compat and TorchServe bind (127.0.0.1 unless told otherwise). On any
    failure everything started so far is stopped again before the error propagates.
    """
    layout = artifacts if isinstance(artifacts, ArtifactLayout) else ArtifactLayout(Path(artifacts))
    layout = ArtifactLayout(layout.root.resolve())
    settings = settings or ServerSettings()
    ports = ports or Ports()
    state_dir = Path(state_dir).resolve()
    names = _validate_servers(servers)
    report = progress or log.info

    kinds = preflight(layout, names, settings, ports, state_dir, host)
    state_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        artifacts=layout, settings=settings, ports=ports, state_dir=state_dir, servers={}, host=host
    )
    launching: dict[str, tuple[ProcessHandle, LaunchSpec, HealthCheck]] = {}
    try:
        for name in names:
            info, spec = _spawn(name, kinds[name], layout, settings, ports, state_dir, host)
            stack.servers[name] = info
            launching[name] = (info.handle, spec, _health_check(name, ports, settings, host, state_dir))
            report(f"started {info.kind} (pid {info.pid}), log {info.log_file}")
            if info.kind == tfserving.REAL_BINARY:
                report("note: tensorflow_model_server has no address flag: it listens on 0.0.0.0")
        stack._save()
        wait_healthy(launching, timeout_s, progress=report)
    except BaseException:
        try:
            stack.down()
        except Exception as cleanup:  # the start-up error matters more; say what may be left over
            report(f"cleaning up after the failed start also failed: {cleanup}")
        raise
    stack._save()
    return stack


def preflight(
    layout: ArtifactLayout,
    names: list[str],
    settings: ServerSettings,
    ports: Ports,
    state_dir: Path,
    host: str = LOOPBACK,
) -> dict[str, str]:
    """Every reason the servers cannot start, found before starting any; returns the kind of each server."""
    problems: list[str] = []
    kinds: dict[str, str] = {}
    export_hint = f"create it with `inferload export --out {layout.root}`"
    needed = {"tfserving": layout.tf_version_dir / "saved_model.pb", "torchserve": layout.mar,
              "triton": layout.triton_version_dir / "model.py"}
    for name in names:
        if not needed[name].exists():
            problems.append(f"missing model artifact for {name}: {needed[name]}: {export_hint}")
    if "tfserving" in names:
        try:
            kinds["tfserving"] = tfserving.resolve_kind(settings.tfserving_kind)
        except (tfserving.TfServingUnavailableError, ValueError) as exc:
            problems.append(str(exc))
        if kinds.get("tfserving") == tfserving.COMPAT and not tfserving.COMPAT_MAIN.exists():
            problems.append(
                f"tfs-compat is missing ({tfserving.COMPAT_MAIN}): reinstall inferload (`make setup`)"
            )
    if "torchserve" in names:
        kinds["torchserve"] = "torchserve"
        if _java() is None:
            problems.append(
                "Java not found (TorchServe's frontend needs it): install Java 17, e.g. "
                "`apt-get install openjdk-17-jre-headless`, or set JAVA_HOME"
            )
    if settings.tls is not None:
        for path in (settings.tls.cert_file, settings.tls.key_file, settings.tls.ca_file,
                     settings.tls.client_ca_file):
            if path is not None and not Path(path).is_file():
                problems.append(f"TLS file {path} does not exist: give an existing PEM file")
        if settings.tls.client_ca_file is not None and "torchserve" in names:
            problems.append(
                "TorchServe 0.12 cannot require client certificates (mutual TLS): put nginx in front "
                "(a server config with `balancer: {kind: nginx, tls: true}`), or start TF Serving alone"
            )
        if "triton" in names:  # never a plaintext Triton where TLS was asked for
            problems.append(
                "TLS for Triton is not set up by inferload: start Triton without tls, or put nginx in front "
                "(a server config with `balancer: {kind: nginx, tls: true}`)"
            )
    if "triton" in names:
        from models.triton_export import repository_is_current

        try:
            kinds["triton"] = triton.resolve_kind(settings.triton_kind)
            problems.extend(triton.environment_problems(kinds["triton"]))  # type: ignore[arg-type]
        except (triton.TritonUnavailableError, ValueError) as exc:
            problems.append(str(exc))
        if needed["triton"].exists() and not repository_is_current(layout.triton_repository):
            problems.append(
                f"the Triton model repository {layout.triton_repository} comes from an older export (its "
                f"model.py differs from this inferload's): export again with `inferload export --out "
                f"{layout.root}` (it redoes a stale export)"
            )
    if settings.cpus is not None:
        try:
            check_available(settings.cpus, what=f"server CPU set {format_cpu_list(settings.cpus)}")
        except CpuSetError as exc:
            problems.append(str(exc))
        if shutil.which("taskset") is None:
            problems.append("pinning servers to CPUs needs taskset (util-linux): install it, or run unpinned")
    running = read_state(state_dir)
    if running and any(ServerInfo(**s).handle.alive() for s in running.get("servers", {}).values()):
        problems.append(
            f"servers from {state_dir / STATE_FILE} are still running: stop them with "
            f"`inferload serve down --state-dir {state_dir}`"
        )
    if ":" in host and "torchserve" in names:
        problems.append(
            f"TorchServe cannot bind the IPv6 address {host} (its config.properties addresses take IPv4 or "
            "host names only): bind an IPv4 address, or 0.0.0.0 for all"
        )
    if not is_local_address(host):
        problems.append(
            f"cannot bind {host}: it is not an address of this machine (see `ip addr`); bind one of its "
            "addresses, 0.0.0.0 for all, or 127.0.0.1"
        )
    wanted = [port for name in names for port in ports.of(name).values()]
    for port, owner in busy_ports(wanted, host) if is_local_address(host) else []:
        problems.append(
            f"port {port} on {host} is already in use by {owner}: stop that process or choose other ports"
        )
    if problems:
        raise StackError("cannot start the servers:\n  - " + "\n  - ".join(problems))
    return kinds


def down(state_dir: Path | str = DEFAULT_STATE_DIR) -> list[str]:
    """Stop the servers recorded in `state_dir` (from any process); returns their names. Idempotent."""
    stack = load(state_dir)
    return stack.down() if stack else []


def load(state_dir: Path | str = DEFAULT_STATE_DIR) -> Stack | None:
    """The stack recorded in `state_dir`, or None when nothing is recorded there."""
    state_dir = Path(state_dir).resolve()
    state = read_state(state_dir)
    if state is None:
        return None
    return Stack(
        artifacts=ArtifactLayout(Path(state["artifacts"])),
        settings=ServerSettings(**state["settings"]),
        ports=Ports.from_dict(state["ports"]),
        state_dir=state_dir,
        servers={name: ServerInfo(**server) for name, server in state["servers"].items()},
        host=state.get("bind", LOOPBACK),
    )


def read_state(state_dir: Path) -> dict | None:
    path = Path(state_dir) / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if state.get("schema") != STATE_SCHEMA or state.get("schema_version") != STATE_VERSION:
        raise StackError(f"{path} is not an inferload servers file of version {STATE_VERSION}")
    return state


def write_state(state_dir: Path, info: dict[str, object]) -> Path:
    """Write servers.json atomically (a reader never sees half a file)."""
    path = Path(state_dir) / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**info, "written_at": time.time()}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _validate_servers(servers: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(servers))
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise StackError(f"unknown server(s) {unknown or names}: choose from {', '.join(SERVERS)}")
    return names


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def _health_check(
    name: str, ports: Ports, settings: ServerSettings, host: str = LOOPBACK, state_dir: Path | None = None
) -> HealthCheck:
    if name == "tfserving":
        return lambda: tfserving.health(ports, host=host)
    if name == "triton":
        return lambda: triton.health(ports, host=host)
    ca_file = settings.tls.ca_file if settings.tls is not None else None
    workdir = state_dir / name if settings.torchserve_token_auth and state_dir is not None else None
    return lambda: torchserve.health(ports, settings.torchserve_workers, host=host, tls_ca_file=ca_file,
                                     workdir=workdir)


def _spawn(
    name: str,
    kind: str,
    layout: ArtifactLayout,
    settings: ServerSettings,
    ports: Ports,
    state_dir: Path,
    host: str = LOOPBACK,
) -> tuple[ServerInfo, LaunchSpec]:
    workdir = state_dir / name
    tmpdir: str | None = None
    if name == "tfserving":
        spec = tfserving.launch_spec(
            layout, kind=kind, settings=settings, ports=ports, workdir=workdir, host=host  # type: ignore[arg-type]
        )
    elif name == "triton":
        spec = triton.launch_spec(
            layout, kind=kind, settings=settings, ports=ports, workdir=workdir, host=host  # type: ignore[arg-type]
        )
    else:
        # A short path: TorchServe's worker sockets live here and socket paths are limited to 107 bytes.
        tmpdir = tempfile.mkdtemp(prefix="inferload-ts-")
        spec = torchserve.launch_spec(
            layout, settings=settings, ports=ports, workdir=workdir, tmpdir=Path(tmpdir), host=host
        )
    handle, _ = spawn(spec)
    info = ServerInfo(
        name=name,
        kind=kind,
        pid=handle.pid,
        create_time=handle.create_time,
        ports=ports.of(name),
        endpoints=endpoints(name, ports, host, tls=settings.tls is not None),
        log_file=str(spec.log_path),
        workdir=str(workdir),
        tmpdir=tmpdir,
    )
    return info, spec


def _start(
    name: str,
    kind: str,
    layout: ArtifactLayout,
    settings: ServerSettings,
    ports: Ports,
    state_dir: Path,
    timeout_s: float,
    progress: Progress | None,
    host: str = LOOPBACK,
) -> ServerInfo:
    info, spec = _spawn(name, kind, layout, settings, ports, state_dir, host)
    try:
        wait_healthy(
            {name: (info.handle, spec, _health_check(name, ports, settings, host, state_dir))},
            timeout_s,
            progress=progress,
        )
    except BaseException:
        stop(info.handle, name=name, ports=info.ports.values(), host=host)
        raise
    return info
