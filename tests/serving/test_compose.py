"""docker-compose.yml, checked statically (no Docker engine here): pinned official images, the standard
ports on 127.0.0.1 only, artifacts mounted read-only from where `inferload export --out artifacts`
writes them, healthchecks that wait for the model, equal resource limits that each server is told,
batching flags only together; and `docker-compose config -q` when installed. The overrides generated
per server config are checked in test_compose_overrides.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from capabilities import need

from serving import tfserving
from serving.compose_override import BATCHING_EXAMPLE, torchserve_properties
from serving.ports import Ports
from serving.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_server_is_a_service(services: dict[str, dict]) -> None:
    assert set(services) == {"tfserving", "torchserve", "triton"}


def test_triton_is_the_pinned_official_image_of_the_version_run_locally(services: dict[str, dict]) -> None:
    """NVIDIA's 24.10 release is Triton 2.51, the nvidia-pytriton 0.7.0 wheel's server."""
    assert services["triton"]["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"


def test_tf_serving_is_the_pinned_official_image(services: dict[str, dict]) -> None:
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+", services["tfserving"]["image"])


def test_torchserve_image_is_built_from_the_pinned_official_one_with_the_pinned_orjson(
    services: dict[str, dict],
) -> None:
    """The official image has no orjson: the handler would fall back to the stdlib json module."""
    dockerfile = (ROOT / services["torchserve"]["build"]["context"] / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", dockerfile, re.MULTILINE)
    assert base and re.fullmatch(r"pytorch/torchserve:\d+\.\d+\.\d+-cpu", base.group(1))
    pinned = re.search(r'"orjson==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned and f"orjson=={pinned.group(1)}" in dockerfile
    tag = services["torchserve"]["image"]
    assert base.group(1).split(":")[1] in tag and f"orjson{pinned.group(1)}" in tag


def _port_default(mapping: str) -> str:
    """'127.0.0.1:${TFSERVING_REST_PORT:-8501}:8501' -> '127.0.0.1:8501:8501'."""
    return re.sub(r"\$\{[A-Z_]+:-(\d+)\}", r"\1", mapping)


@pytest.mark.parametrize("service", ["tfserving", "torchserve", "triton"])
def test_ports_are_the_standard_ones_on_loopback_only(services: dict[str, dict], service: str) -> None:
    expected = {f"127.0.0.1:{port}:{port}" for port in Ports().of(service).values()}
    assert {_port_default(mapping) for mapping in services[service]["ports"]} == expected


@pytest.mark.parametrize(
    ("service", "source", "target"),
    [
        ("tfserving", "./artifacts/tfserving/linear", "/models/linear"),
        ("torchserve", "./artifacts/torchserve", "/home/model-server/model-store"),
        ("tfserving", "./docker/tfserving", "/config"),
        ("torchserve", "./docker/torchserve/config.properties", "/home/model-server/config.properties"),
        ("triton", "./artifacts/triton", "/models"),
    ],
)
def test_mounts_are_read_only_and_point_at_what_export_writes(
    services: dict[str, dict], service: str, source: str, target: str
) -> None:
    assert f"{source}:{target}:ro" in services[service]["volumes"]
    assert (ROOT / source).exists() or source.startswith("./artifacts/")


def test_artifact_mounts_match_the_export_layout(tmp_path: Path) -> None:
    from models.artifacts import ArtifactLayout

    layout = ArtifactLayout(tmp_path / "artifacts")
    assert layout.tf_base_path.relative_to(tmp_path) == Path("artifacts/tfserving/linear")
    assert layout.model_store.relative_to(tmp_path) == Path("artifacts/torchserve")
    assert layout.triton_repository.relative_to(tmp_path) == Path("artifacts/triton")


def test_tf_serving_serves_the_model_named_linear(services: dict[str, dict]) -> None:
    assert services["tfserving"]["environment"]["MODEL_NAME"] == "linear"


def test_tf_serving_gets_no_batching_flags_without_batching(services: dict[str, dict]) -> None:
    """tensorflow_model_server exits on --batching_parameters_file without --enable_batching=true."""
    command = " ".join(services["tfserving"]["command"])
    assert "--batching_parameters_file" not in command and "--enable_batching" not in command


def test_the_batching_override_passes_both_batching_flags_together() -> None:
    batching = yaml.safe_load((ROOT / "docker/batching.override.yml").read_text())["services"]
    command = batching["tfserving"]["command"]
    assert "--enable_batching=true" in command
    assert "--batching_parameters_file=/config/batching_parameters.txt" in command
    base = yaml.safe_load(COMPOSE.read_text())["services"]["tfserving"]["command"]
    assert command[: len(base)] == base  # the override repeats the base flags: compose replaces `command`


def test_committed_batching_parameters_are_what_the_generator_writes() -> None:
    committed = (ROOT / "docker/tfserving/batching_parameters.txt").read_text()
    lines = [line for line in committed.splitlines() if line and not line.startswith("#")]
    assert "\n".join(lines) + "\n" == tfserving.batching_parameters(BATCHING_EXAMPLE)


def test_both_servers_are_told_the_same_cpu_count_as_their_limit(services: dict[str, dict]) -> None:
    tfs, ts = services["tfserving"], services["torchserve"]
    cpus = "${SERVER_CPUS:-2}"
    assert tfs["cpus"] == ts["cpus"] == cpus
    assert f"--tensorflow_intra_op_parallelism={cpus}" in tfs["command"]
    assert f"--tensorflow_inter_op_parallelism={cpus}" in tfs["command"]
    for variable in ("TS_NUMBER_OF_NETTY_THREADS", "TS_NETTY_CLIENT_THREADS", "OMP_NUM_THREADS"):
        assert ts["environment"][variable] == cpus
    properties = _properties(ROOT / "docker/torchserve/config.properties")
    assert properties["enable_envvars_config"] == "true"  # else TorchServe ignores the TS_ variables
    assert properties["number_of_netty_threads"] == properties["netty_client_threads"] == "2"


def test_triton_is_told_the_cpu_limit_and_gets_room_for_the_python_backend(services: dict[str, dict]) -> None:
    triton = services["triton"]
    cpus = "${SERVER_CPUS:-2}"
    assert triton["cpus"] == cpus and f"--http-thread-count={cpus}" in triton["command"]
    assert triton["environment"]["OMP_NUM_THREADS"] == triton["environment"]["OPENBLAS_NUM_THREADS"] == cpus
    assert triton["shm_size"] == "1g"  # the backend's shared-memory region is bigger than Docker's 64 MB


def test_the_batching_override_gives_triton_the_generated_dynamic_batching_config() -> None:
    from models.linear import LinearSpec
    from serving.triton import render_config

    batching = yaml.safe_load((ROOT / "docker/batching.override.yml").read_text())["services"]["triton"]
    assert "./docker/triton/config.batching.pbtxt:/models/linear/config.pbtxt:ro" in batching["volumes"]
    committed = (ROOT / "docker/triton/config.batching.pbtxt").read_text()
    lines = [line for line in committed.splitlines() if line and not line.startswith("#")]
    assert "\n".join(lines) + "\n" == render_config(LinearSpec(), BATCHING_EXAMPLE, execution_env=None)


def test_rest_threads_default_to_tf_servings_rule_for_the_default_limit(services: dict[str, dict]) -> None:
    """4 x CPUs, as TF Serving picks from the host's CPU count; here from the limit's default (2)."""
    assert "--rest_api_num_threads=${TFSERVING_REST_THREADS:-8}" in services["tfserving"]["command"]


@pytest.mark.parametrize("service", ["tfserving", "torchserve", "triton"])
def test_healthcheck_and_restart_policy(services: dict[str, dict], service: str) -> None:
    check = services[service]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert "curl" not in " ".join(check["test"])  # no image is guaranteed to have curl
    assert services[service]["restart"] == "unless-stopped"


@pytest.mark.parametrize(
    ("service", "asks", "proof"),
    [
        ("tfserving", "GET /v1/models/linear", '"AVAILABLE"'),  # model status, not the process
        ("torchserve", "http://127.0.0.1:8081/models/linear", "'READY'"),  # a worker, not /ping
        ("triton", "GET /v2/models/linear/ready", "' 200 '"),  # the model ready, not /v2/health/live
    ],
)
def test_healthchecks_prove_the_model_is_loaded(
    services: dict[str, dict], service: str, asks: str, proof: str
) -> None:
    script = " ".join(services[service]["healthcheck"]["test"])
    assert asks in script and proof in script
    assert "/ping" not in script


def test_equal_cpu_and_memory_limits(services: dict[str, dict]) -> None:
    assert len({service["cpus"] for service in services.values()}) == 1
    assert len({service["mem_limit"] for service in services.values()}) == 1


def _properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize(
    ("file", "settings"),
    [("config.properties", ServerSettings()), ("config.batching.properties", BATCHING_EXAMPLE)],
)
def test_container_torchserve_configs_match_the_generator(file: str, settings: ServerSettings) -> None:
    """The mounted config.properties is what serving/compose_override.py writes for the container (2 CPUs)."""
    assert _properties(ROOT / "docker/torchserve" / file) == torchserve_properties(settings, 2)


@pytest.mark.parametrize("overrides", [(), ("docker/batching.override.yml",)], ids=["base", "batching"])
def test_docker_compose_accepts_the_file(overrides: tuple[str, ...]) -> None:
    need("compose")
    compose = shutil.which("docker-compose")
    assert compose is not None
    files = [arg for path in (COMPOSE, *(ROOT / o for o in overrides)) for arg in ("-f", str(path))]
    result = subprocess.run(
        [compose, *files, "config", "-q"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
