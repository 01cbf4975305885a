"""The files a compose target is driven with: docker-compose.yml's per-config override and env file.

docker-compose.yml holds what never changes (images, mounts, loopback ports, limits); everything a
server config changes goes into an override file generated here into the run's state dir: TF
Serving's command line (batching flags only when batching is on: `tensorflow_model_server` refuses
`--batching_parameters_file` without `--enable_batching`), TorchServe's config.properties (workers,
batch size and delay, netty threads) and healthchecks that wait for the model itself. Host ports,
CPU count and memory go into an env file next to it, because compose appends `ports:` of an
override instead of replacing them. Each server is told the CPU count it runs under, so none sizes
its thread pools to the host's cores. Triton's server config lives in its model's config.pbtxt
(dynamic batching, instances, response cache): the generated one is mounted over the exported one,
and its command line gains `--cache-config` when the response cache is on. Driving compose with these
files is serving/compose.py's job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from models.artifacts import MODEL_NAME, MODEL_VERSION, ArtifactLayout
from models.linear import LinearSpec
from serving import tfserving, torchserve, triton
from serving.ports import Ports
from serving.settings import ServerSettings

__all__ = [
    "BATCHING_EXAMPLE",
    "COMPOSE_FILE",
    "ComposeLimits",
    "compose_env",
    "override",
    "tfserving_command",
    "torchserve_properties",
    "triton_command",
    "write_override",
]

COMPOSE_FILE: Final = Path(__file__).resolve().parent.parent / "docker-compose.yml"
OVERRIDE_FILE: Final = "compose.override.yml"
ENV_FILE: Final = "compose.env"
# Inside the containers: where the generated files are mounted and where the images expect things.
GENERATED_MOUNT: Final = "/inferload"
TS_HOME: Final = "/home/model-server"
TS_CONFIG: Final = f"{TS_HOME}/config.properties"
TS_MODEL_STORE: Final = f"{TS_HOME}/model-store"
TF_MODEL_DIR: Final = f"/models/{MODEL_NAME}"
TRITON_REPOSITORY: Final = "/models"  # docker-compose.yml mounts artifacts/triton here
REST_THREADS_PER_CPU: Final = 4  # TF Serving's own default: 4 x schedulable CPUs (it counts the host's)
# The settings of docker/batching.override.yml (its committed TorchServe config and TF Serving file).
BATCHING_EXAMPLE: Final = ServerSettings(
    tfserving_batching=True, torchserve_batch_size=32, torchserve_max_batch_delay_ms=5,
    triton_dynamic_batching=True, triton_max_queue_delay_us=5000,
)


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


def _http_healthcheck(port: int, path: str, check: str) -> list[str]:
    """A healthcheck that GETs `path` on the container's `port` over bash's /dev/tcp (the images have no
    curl); `check`, a shell test, reads the answer from file descriptor 3."""
    request = f"GET {path} HTTP/1.0\\r\\n\\r\\n"
    script = f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf '{request}' >&3 && {check}"
    return ["CMD", "bash", "-c", script]


def triton_healthcheck() -> list[str]:
    """Healthy = model `linear` ready (its ready endpoint answers 200)."""
    ready = f"/v2/models/{MODEL_NAME}/ready"
    return _http_healthcheck(Ports().triton_http, ready, "head -1 <&3 | grep -q ' 200 '")


def tfserving_healthcheck() -> list[str]:
    """Healthy = a version of the model AVAILABLE."""
    status = f"/v1/models/{MODEL_NAME}"
    return _http_healthcheck(Ports().tfserving_rest, status, "grep -q '\"AVAILABLE\"' <&3")


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
        "# generated by inferload (serving/compose_override.py)\n"
        + "".join(f"{k}={v}\n" for k, v in properties.items())
    )
    document = override(settings, limits, state_dir=state_dir, artifacts=artifacts)
    override_path = state_dir / OVERRIDE_FILE
    override_path.write_text(
        "# generated by inferload (serving/compose_override.py) for server settings:\n"
        f"# {json.dumps(settings.model_dump())}\n" + yaml.safe_dump(document, sort_keys=False)
    )
    env_path = state_dir / ENV_FILE
    env_path.write_text("".join(f"{k}={v}\n" for k, v in compose_env(ports, limits).items()))
    return override_path, env_path
