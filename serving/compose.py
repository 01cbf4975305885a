"""docker compose as a target: the official images, one server config at a time, told their CPU limit.

docker-compose.yml holds what never changes (images, mounts, loopback ports, limits); everything a
server config changes goes into an override file generated here into the run's state dir: TF
Serving's command line (batching flags only when batching is on: `tensorflow_model_server` refuses
`--batching_parameters_file` without `--enable_batching`), TorchServe's config.properties (workers,
batch size and delay, netty threads) and healthchecks that wait for the model itself. Host ports,
CPU count and memory go into an env file next to it, because compose appends `ports:` of an
override instead of replacing them. Each server is told the CPU count it runs under, so none sizes
its thread pools to the host's cores. Triton's server config lives in its model's config.pbtxt
(dynamic batching, instances, response cache): the generated one is mounted over the exported one,
and its command line gains `--cache-config` when the response cache is on.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

import yaml

from models.artifacts import MODEL_NAME, MODEL_VERSION, ArtifactLayout
from models.linear import LinearSpec
from serving import tfserving, torchserve, triton
from serving.monitor import MonitoredServer, metrics_url
from serving.ports import LOOPBACK, Ports, busy_ports
from serving.settings import ServerSettings

__all__ = [
    "COMPOSE_FILE",
    "ComposeError",
    "ComposeLimits",
    "ComposeStack",
    "compose_env",
    "override",
    "require_engine",
    "tfserving_command",
    "torchserve_properties",
    "validate_compose",
    "write_override",
]

COMPOSE_FILE: Final = Path(__file__).resolve().parent.parent / "docker-compose.yml"
SERVICES: Final = ("tfserving", "torchserve", "triton")
KINDS: Final = {"tfserving": tfserving.REAL_BINARY, "torchserve": "torchserve", "triton": triton.ON_PATH}
OVERRIDE_FILE: Final = "compose.override.yml"
ENV_FILE: Final = "compose.env"
# Inside the containers: where the generated files are mounted and where the images expect things.
GENERATED_MOUNT: Final = "/inferload"
TS_HOME: Final = "/home/model-server"
TS_CONFIG: Final = f"{TS_HOME}/config.properties"
TS_MODEL_STORE: Final = f"{TS_HOME}/model-store"
TF_MODEL_DIR: Final = f"/models/{MODEL_NAME}"
TF_CONFIG_DIR: Final = "/config"  # docker/tfserving/ in the base file
TRITON_REPOSITORY: Final = "/models"  # docker-compose.yml mounts artifacts/triton here
REST_THREADS_PER_CPU: Final = 4  # TF Serving's own default: 4 x schedulable CPUs (it counts the host's)
ENGINE_TIMEOUT_S: Final = 15.0
# The settings of docker/batching.override.yml (its committed TorchServe config and TF Serving file).
BATCHING_EXAMPLE: Final = ServerSettings(
    tfserving_batching=True, torchserve_batch_size=32, torchserve_max_batch_delay_ms=5,
    triton_dynamic_batching=True, triton_max_queue_delay_us=5000,
)

Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess[str]]


class ComposeError(RuntimeError):
    """compose cannot bring the servers up (or a file does not validate); the message says what to fix."""


@dataclass(frozen=True)
class ComposeLimits:
    """The resources both services get: equal for both, and what each server is told it has."""

    cpus: int = 2
    memory: str = "4g"

    def __post_init__(self) -> None:
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, int) or self.cpus < 1:
            raise ValueError(f"cpus must be a whole number >= 1 (threads are sized by it), got {self.cpus!r}")
        if not re.fullmatch(r"\d+[kmg]?", self.memory):
            raise ValueError(f"memory must look like 4g, 512m or 1073741824, got {self.memory!r}")


def tfserving_command(settings: ServerSettings, cpus: int) -> list[str]:
    """Flags appended to the image's entrypoint (which sets ports, model name and base path).

    Batching flags come only together: the real binary exits on a parameters file without
    `--enable_batching=true`.
    """
    threads = REST_THREADS_PER_CPU * cpus
    command = [
        f"--monitoring_config_file={GENERATED_MOUNT}/tfserving/monitoring.config",
        f"--tensorflow_intra_op_parallelism={cpus}",
        f"--tensorflow_inter_op_parallelism={cpus}",
        f"--rest_api_num_threads={threads}",
        f"--grpc_max_threads={threads}",
    ]
    if settings.tfserving_batching:
        command += [
            "--enable_batching=true",
            f"--batching_parameters_file={GENERATED_MOUNT}/tfserving/batching_parameters.txt",
        ]
    return command


def torchserve_properties(
    settings: ServerSettings, cpus: int, *, model_version: str = str(MODEL_VERSION)
) -> dict[str, str]:
    """config.properties for the container: the local generator's entries, bound inside the container,
    plus the thread pools sized to `cpus` (TorchServe's defaults count the host's processors)."""
    entries = torchserve.config_properties(
        ports=Ports(),
        settings=settings,
        model_store=Path(TS_MODEL_STORE),
        host="0.0.0.0",  # inside the container only: compose publishes on 127.0.0.1
        model_version=model_version,
    )
    return {
        **entries,
        # docker-compose.yml passes SERVER_CPUS as TS_NUMBER_OF_NETTY_THREADS etc.; this lets them apply.
        "enable_envvars_config": "true",
        "number_of_netty_threads": str(cpus),
        "netty_client_threads": str(cpus),
        "default_workers_per_model": str(settings.torchserve_workers),
    }


def _torch_threads(settings: ServerSettings, cpus: int) -> int:
    """torch intra-op threads per worker: the workers share the limit instead of each taking it all."""
    return max(1, cpus // settings.torchserve_workers)


def torchserve_healthcheck(workers: int) -> list[str]:
    """Healthy = `workers` workers of the model READY, asked of the management API inside the container."""
    script = (
        "import json, sys, urllib.request; "
        f"d = json.load(urllib.request.urlopen('http://127.0.0.1:{Ports().torchserve_management}"
        f"/models/{MODEL_NAME}', timeout=3)); "
        "sys.exit(0 if sum(w.get('status') == 'READY' for v in d for w in v.get('workers', [])) "
        f">= {workers} else 1)"
    )
    return ["CMD", "python", "-c", script]


def triton_command(settings: ServerSettings, cpus: int) -> list[str]:
    """tritonserver's command line in the container: the official image's binary and backends, every
    listener on 0.0.0.0 inside the container (compose publishes on 127.0.0.1), HTTP threads sized to
    `cpus`, and the response cache's size when the model config enables it."""
    ports = Ports()
    command = [
        "tritonserver",
        f"--model-repository={TRITON_REPOSITORY}",
        f"--http-port={ports.triton_http}",
        f"--grpc-port={ports.triton_grpc}",
        f"--metrics-port={ports.triton_metrics}",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--http-thread-count={cpus}",
        f"--backend-config=python,shm-default-byte-size={triton.SHM_DEFAULT_BYTES}",
    ]
    if settings.triton_response_cache:
        command.append(f"--cache-config=local,size={settings.triton_cache_mb * 2**20}")
    return command


def triton_healthcheck() -> list[str]:
    """Healthy = model `linear` ready (its ready endpoint answers 200), over bash's /dev/tcp."""
    request = f"GET /v2/models/{MODEL_NAME}/ready HTTP/1.0\\r\\n\\r\\n"
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{Ports().triton_http} && printf '{request}' >&3 "
        "&& head -1 <&3 | grep -q ' 200 '"
    )
    return ["CMD", "bash", "-c", script]


def tfserving_healthcheck() -> list[str]:
    """Healthy = a version of the model AVAILABLE (the image has no curl: HTTP over bash's /dev/tcp)."""
    request = f"GET /v1/models/{MODEL_NAME} HTTP/1.0\\r\\n\\r\\n"
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{Ports().tfserving_rest} && printf '{request}' >&3 "
        "&& grep -q '\"AVAILABLE\"' <&3"
    )
    return ["CMD", "bash", "-c", script]


def override(
    settings: ServerSettings,
    limits: ComposeLimits,
    *,
    state_dir: Path,
    artifacts: ArtifactLayout | None = None,
) -> dict[str, Any]:
    """The override document for one server config (paths absolute: compose resolves relative ones
    against the base file's directory, not the override's)."""
    generated = state_dir.resolve()
    health = {"interval": "2s", "timeout": "5s", "retries": 90, "start_period": "10s"}
    services: dict[str, Any] = {
        "tfserving": {
            "command": tfserving_command(settings, limits.cpus),
            "volumes": [f"{generated / 'tfserving'}:{GENERATED_MOUNT}/tfserving:ro"],
            "healthcheck": {"test": tfserving_healthcheck(), **health},
            # A crash is a crash: the runner fails the cell instead of measuring a restart loop.
            "restart": "no",
        },
        "torchserve": {
            "environment": {
                "TS_NUMBER_OF_NETTY_THREADS": str(limits.cpus),
                "TS_NETTY_CLIENT_THREADS": str(limits.cpus),
                "OMP_NUM_THREADS": str(_torch_threads(settings, limits.cpus)),
            },
            "volumes": [f"{generated / 'torchserve' / 'config.properties'}:{TS_CONFIG}:ro"],
            "healthcheck": {"test": torchserve_healthcheck(settings.torchserve_workers), **health},
            "restart": "no",
        },
        "triton": {
            "command": triton_command(settings, limits.cpus),
            "environment": {
                name: str(max(1, limits.cpus // settings.triton_instances))
                for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
            },
            "volumes": [
                f"{generated / 'triton' / 'config.pbtxt'}:{TRITON_REPOSITORY}/{MODEL_NAME}/config.pbtxt:ro"
            ],
            "healthcheck": {"test": triton_healthcheck(), **health},
            "restart": "no",
        },
    }
    if artifacts is not None:  # else the base file's ./artifacts mounts
        root = artifacts.root.resolve()
        services["tfserving"]["volumes"].append(f"{root / 'tfserving' / MODEL_NAME}:{TF_MODEL_DIR}:ro")
        services["torchserve"]["volumes"].append(f"{root / 'torchserve'}:{TS_MODEL_STORE}:ro")
        # before the config file: the file is mounted into this directory
        services["triton"]["volumes"].insert(0, f"{root / 'triton'}:{TRITON_REPOSITORY}:ro")
    return {"version": "2.4", "services": services}


def compose_env(ports: Ports, limits: ComposeLimits) -> dict[str, str]:
    """The variables docker-compose.yml interpolates: host ports, limits, TF Serving's REST threads."""
    env = {f"{name.upper()}_PORT": str(port) for name, port in ports.to_dict().items()}
    env["SERVER_CPUS"] = str(limits.cpus)
    env["SERVER_MEMORY"] = limits.memory
    env["TFSERVING_REST_THREADS"] = str(REST_THREADS_PER_CPU * limits.cpus)
    return env


def write_override(
    state_dir: Path,
    settings: ServerSettings,
    limits: ComposeLimits,
    ports: Ports,
    *,
    artifacts: ArtifactLayout | None = None,
    model_version: str = str(MODEL_VERSION),
    spec: LinearSpec | None = None,
) -> tuple[Path, Path]:
    """Write the override, the env file and the files they mount; returns (override, env file).

    `spec`: the exported model's dimensions, for Triton's config.pbtxt (default: the artifacts', else
    the full-size model).
    """
    state_dir = state_dir.resolve()
    tf_dir, ts_dir, triton_dir = state_dir / "tfserving", state_dir / "torchserve", state_dir / "triton"
    for directory in (tf_dir, ts_dir, triton_dir):
        directory.mkdir(parents=True, exist_ok=True)
    if spec is None:
        spec = artifacts.spec() if artifacts is not None and artifacts.model_json.exists() else LinearSpec()
    (triton_dir / "config.pbtxt").write_text(triton.render_config(spec, settings, execution_env=None))
    (tf_dir / "monitoring.config").write_text(tfserving.monitoring_config())
    batching = tf_dir / "batching_parameters.txt"
    if settings.tfserving_batching:
        batching.write_text(tfserving.batching_parameters(settings))
    else:
        batching.unlink(missing_ok=True)  # a stale file from an earlier config would mislead a reader
    properties = torchserve_properties(settings, limits.cpus, model_version=model_version)
    (ts_dir / "config.properties").write_text(
        "# generated by inferload (serving/compose.py)\n"
        + "".join(f"{k}={v}\n" for k, v in properties.items())
    )
    document = override(settings, limits, state_dir=state_dir, artifacts=artifacts)
    override_path = state_dir / OVERRIDE_FILE
    override_path.write_text(
        "# generated by inferload (serving/compose.py) for server settings:\n"
        f"# {json.dumps(settings.model_dump())}\n" + yaml.safe_dump(document, sort_keys=False)
    )
    env_path = state_dir / ENV_FILE
    env_path.write_text("".join(f"{k}={v}\n" for k, v in compose_env(ports, limits).items()))
    return override_path, env_path


def _run(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {exc.timeout:.0f} s")
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: command not found")


def compose_program(run: Runner = _run) -> list[str]:
    """`docker compose` (v2 plugin) when present, else `docker-compose` (v1); raises when neither is."""
    if shutil.which("docker") and run(["docker", "compose", "version"], ENGINE_TIMEOUT_S).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ComposeError(
        "neither `docker compose` nor `docker-compose` is installed: install Docker Engine with its "
        "compose plugin (https://docs.docker.com/engine/install/) or `apt-get install docker-compose`"
    )


def validate_compose(
    compose_file: Path = COMPOSE_FILE,
    overrides: Iterable[Path] = (),
    *,
    env_file: Path | None = None,
    profiles: Iterable[str] = (),
    program: Sequence[str] | None = None,
    run: Runner = _run,
) -> dict[str, Any]:
    """`compose config` on the base file with the overrides (no engine needed): the configuration as
    compose resolved it (what it would run; one compose call for checks that also read it). Raises
    ComposeError naming the files, profiles and compose's own complaint when they do not validate."""
    overrides = list(overrides)
    profiles = list(profiles)
    argv = [*(program or compose_program(run))]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    for path in (compose_file, *overrides):
        argv += ["-f", str(path)]
    for profile in profiles:
        argv += ["--profile", profile]
    result = run([*argv, "config"], 60.0)
    if result.returncode != 0:
        named = ", ".join(str(p) for p in (compose_file, *overrides))
        with_profiles = f" with profile(s) {', '.join(profiles)}" if profiles else ""
        env = f" and env file {env_file}" if env_file else ""
        raise ComposeError(
            f"compose file(s) {named}{with_profiles}{env} do not validate: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return dict(yaml.safe_load(result.stdout) or {})


class ComposeStack:
    """The compose services of one state dir, brought up with one server config.

    `run` executes a command (argv, timeout) and is replaced by a fake in unit tests; `program` fixes
    the compose command (default: detected).
    """

    def __init__(
        self,
        *,
        state_dir: Path | str,
        settings: ServerSettings | None = None,
        servers: Iterable[str] = SERVICES,
        limits: ComposeLimits | None = None,
        ports: Ports | None = None,
        artifacts: ArtifactLayout | Path | str | None = None,
        compose_file: Path | str = COMPOSE_FILE,
        project: str | None = None,
        run: Runner = _run,
        program: Sequence[str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.settings = settings or ServerSettings()
        self.servers = _validate_servers(servers)
        self.limits = limits or ComposeLimits()
        self.ports = ports or Ports()
        if artifacts is not None and not isinstance(artifacts, ArtifactLayout):
            artifacts = ArtifactLayout(Path(artifacts))
        self.artifacts = artifacts
        self.compose_file = Path(compose_file).resolve()
        self.project = project or _project_name(self.state_dir)
        self._run = run
        self._program = list(program) if program else None
        self.override_path: Path | None = None
        self.env_path: Path | None = None
        self._containers: dict[str, str] = {}

    # -- commands ---------------------------------------------------------------------------------

    @property
    def program(self) -> list[str]:
        if self._program is None:
            self._program = compose_program(self._run)
        return self._program

    def compose_argv(self, *args: str) -> list[str]:
        """`<compose> --env-file E -f base -f override -p project <args>`."""
        argv = [*self.program]
        if self.env_path is not None:
            argv += ["--env-file", str(self.env_path)]
        argv += ["-f", str(self.compose_file)]
        if self.override_path is not None:
            argv += ["-f", str(self.override_path)]
        return [*argv, "-p", self.project, *args]

    def _compose(self, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self._run(self.compose_argv(*args), timeout_s)

    # -- lifecycle --------------------------------------------------------------------------------

    def up(
        self, *, timeout_s: float = 300.0, build: bool = True, progress: Callable[[str], None] | None = None
    ) -> ComposeStack:
        """Check, write the override, `up -d` the chosen services, wait until each model is loaded.

        Fails fast (no waiting) when no Docker engine answers; on any failure after starting, the
        services are taken down again before the error propagates.
        """
        report = progress or (lambda _message: None)
        self._preflight()
        self.override_path, self.env_path = write_override(
            self.state_dir,
            self.settings,
            self.limits,
            self.ports,
            artifacts=self.artifacts,
            model_version=self._model_version(),
        )
        validate_compose(
            self.compose_file,
            [self.override_path],
            env_file=self.env_path,
            program=self.program,
            run=self._run,
        )
        self._require_engine()
        args = ["up", "-d", *(["--build"] if build else []), *self.servers]
        report(
            f"docker compose up: {' '.join(self.servers)} "
            f"(project {self.project}, {self.limits.cpus} CPUs each)"
        )
        try:
            result = self._compose(*args, timeout_s=max(timeout_s, 600.0))  # may pull and build images
            if result.returncode != 0:
                raise ComposeError(f"`{' '.join(self.compose_argv(*args))}` failed: {_tail(result)}")
            self._wait_healthy(timeout_s, report)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> list[str]:
        """Stop and remove this stack's services (idempotent); returns them. Other services of the same
        compose project (a shared `project` name) are left running; the project's network goes with
        its last container."""
        if self.override_path is None:
            return []
        removed = self._compose("rm", "--stop", "--force", "-v", *self.servers, timeout_s=180.0)
        self._containers.clear()
        if removed.returncode != 0:
            raise ComposeError(f"`docker compose rm` of {', '.join(self.servers)} failed: {_tail(removed)}")
        remaining = self._compose("ps", "-q", timeout_s=30.0)
        if remaining.returncode == 0 and not remaining.stdout.strip():
            result = self._compose("down", "--remove-orphans", "--timeout", "10", timeout_s=180.0)
            if result.returncode != 0:
                raise ComposeError(f"`docker compose down` of project {self.project} failed: {_tail(result)}")
        return list(self.servers)

    def __enter__(self) -> ComposeStack:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- state ------------------------------------------------------------------------------------

    def container(self, server: str) -> str | None:
        """The container id of a service (None when compose has none)."""
        if server not in self._containers:
            result = self._compose("ps", "-q", server, timeout_s=30.0)
            ids = result.stdout.split() if result.returncode == 0 else []
            if not ids:
                return None
            self._containers[server] = ids[0]
        return self._containers[server]

    def _state(self, server: str) -> dict[str, Any] | None:
        container = self.container(server)
        if container is None:
            return None
        result = self._run(["docker", "inspect", "--format", "{{json .State}}", container], 30.0)
        if result.returncode != 0:
            return None
        try:
            state = json.loads(result.stdout)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    def alive(self, server: str) -> bool:
        """True while the service's container runs (and is not in a restart loop)."""
        state = self._state(server) if server in self.servers else None
        return bool(state and state.get("Running") and not state.get("Restarting"))

    def healthy(self, server: str) -> bool:
        return self.alive(server) and self._health(server) is None

    def _health(self, server: str) -> str | None:
        if server == "tfserving":
            return tfserving.health(self.ports)
        if server == "triton":
            return triton.health(self.ports)
        return torchserve.health(self.ports, self.settings.torchserve_workers)

    def endpoints(self, server: str) -> dict[str, str]:
        """Base URLs by protocol, as for an external target: rest, grpc (host:port), metrics."""
        if server not in self.servers:
            raise ComposeError(
                f"{server} is not part of this compose stack (it has {', '.join(self.servers)})"
            )
        rest, grpc = {
            "tfserving": (self.ports.tfserving_rest, self.ports.tfserving_grpc),
            "torchserve": (self.ports.torchserve_inference, self.ports.torchserve_grpc),
            "triton": (self.ports.triton_http, self.ports.triton_grpc),
        }[server]
        return {
            "rest": f"http://{LOOPBACK}:{rest}",
            "grpc": f"{LOOPBACK}:{grpc}",
            "metrics": metrics_url(server, self.ports.of(server)),
        }

    def monitored(self) -> list[MonitoredServer]:
        """The services as the monitor watches them: their metrics URL and their container."""
        return [
            MonitoredServer(
                name=server,
                kind=KINDS[server],
                metrics_url=self.endpoints(server)["metrics"],
                container=self.container(server),
            )
            for server in self.servers
        ]

    @property
    def triton_kind(self) -> str | None:
        return KINDS["triton"] if "triton" in self.servers else None

    @property
    def info(self) -> dict[str, object]:
        """What ran, for the manifest: project, files, limits, ports and settings."""
        return {
            "target": "compose",
            "project": self.project,
            "compose_file": str(self.compose_file),
            "override": str(self.override_path) if self.override_path else None,
            "env_file": str(self.env_path) if self.env_path else None,
            "servers": list(self.servers),
            "kinds": {server: KINDS[server] for server in self.servers},
            "limits": asdict(self.limits),
            "ports": self.ports.to_dict(),
            "settings": self.settings.model_dump(),
            "containers": dict(self._containers),
        }

    # -- checks -----------------------------------------------------------------------------------

    def _model_version(self) -> str:
        if self.artifacts is not None and self.artifacts.mar.exists():
            return torchserve.mar_version(self.artifacts.mar)
        return str(MODEL_VERSION)

    def _preflight(self) -> None:
        problems: list[str] = []
        if self.settings.tfserving_kind == tfserving.COMPAT:
            problems.append(
                "tfserving_kind 'tfs-compat' cannot run under compose (the image is the real "
                "tensorflow_model_server): use 'auto' or 'tensorflow_model_server'"
            )
        layout = self.artifacts or ArtifactLayout(self.compose_file.parent / "artifacts")
        needed = {"tfserving": layout.tf_version_dir / "saved_model.pb", "torchserve": layout.mar,
                  "triton": layout.triton_version_dir / "model.py"}
        for server in self.servers:
            if not needed[server].exists():
                problems.append(
                    f"missing model artifact for {server}: {needed[server]}: create it with "
                    f"`inferload export --out {layout.root}`"
                )
        wanted = [port for server in self.servers for port in self.ports.of(server).values()]
        for port, owner in busy_ports(wanted):
            problems.append(
                f"port {port} on {LOOPBACK} is already in use by {owner}: stop it or choose other ports"
            )
        if problems:
            raise ComposeError("cannot bring the compose services up:\n  - " + "\n  - ".join(problems))

    def _require_engine(self) -> None:
        require_engine(self._run)

    def _wait_healthy(self, timeout_s: float, report: Callable[[str], None]) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = {server: "its container to start" for server in self.servers}
        while waiting:
            for server in list(waiting):
                state = self._state(server)
                if state is not None and (
                    state.get("Status") in ("exited", "dead") or state.get("Restarting")
                ):
                    raise ComposeError(
                        f"{server} container stopped during start-up (exit code {state.get('ExitCode')}); "
                        f"its log ends:\n{self._logs(server)}"
                    )
                missing = "its container to start" if state is None else self._health(server)
                if missing is None:
                    report(f"{server} is healthy (model loaded)")
                    del waiting[server]
                else:
                    waiting[server] = missing
            if not waiting:
                return
            if time.monotonic() > deadline:
                details = "\n".join(
                    f"  - {server}: waiting for {what}; log ends:\n{self._logs(server)}"
                    for server, what in waiting.items()
                )
                raise ComposeError(f"compose services not healthy after {timeout_s:.0f} s:\n{details}")
            time.sleep(1.0)

    def _logs(self, server: str, lines: int = 20) -> str:
        result = self._compose("logs", "--no-color", "--tail", str(lines), server, timeout_s=30.0)
        return result.stdout.strip() or result.stderr.strip() or "(no log)"


def require_engine(run: Runner = _run) -> None:
    """Raise ComposeError in seconds (never at a health timeout) when no Docker engine answers; for a
    runner that wants to refuse a compose matrix before any load."""
    result = run(["docker", "info", "--format", "{{.ServerVersion}}"], ENGINE_TIMEOUT_S)
    if result.returncode != 0 or not result.stdout.strip():
        raise ComposeError(
            f"no Docker engine is reachable ({_tail(result) or 'docker info printed nothing'}): start it "
            "(`sudo systemctl start docker`, or open Docker Desktop), check DOCKER_HOST and that your "
            "user may use the socket (`docker info`), or run the matrix with `target: {kind: local}`"
        )


def _validate_servers(servers: Iterable[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(servers))
    unknown = [name for name in names if name not in SERVICES]
    if unknown or not names:
        raise ComposeError(
            f"unknown compose service(s) {unknown or list(names)}: choose from {', '.join(SERVICES)}"
        )
    return names


def _project_name(state_dir: Path) -> str:
    """One compose project per state dir, so two runs never take over each other's containers."""
    return "inferload-" + hashlib.sha1(str(state_dir).encode()).hexdigest()[:8]


def _tail(result: subprocess.CompletedProcess[str], lines: int = 5) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return " | ".join(text[-lines:])


def env_names() -> list[str]:
    """Every variable docker-compose.yml reads (for docs and tests)."""
    return sorted(
        {
            *(f"{f.name.upper()}_PORT" for f in fields(Ports)),
            "SERVER_CPUS",
            "SERVER_MEMORY",
            "TFSERVING_REST_THREADS",
        }
    )
