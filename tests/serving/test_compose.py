"""docker-compose.yml, checked statically (no Docker engine here): pinned official images, the standard
ports on 127.0.0.1 only, artifacts mounted read-only from where `inferload export --out artifacts`
writes them, healthchecks, equal resource limits; and `docker-compose config -q` when installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from serving.ports import Ports
from serving.settings import ServerSettings
from serving.torchserve import config_properties

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_both_servers_are_services(services: dict[str, dict]) -> None:
    assert set(services) == {"tfserving", "torchserve"}


@pytest.mark.parametrize(
    ("service", "image"),
    [
        ("tfserving", r"tensorflow/serving:\d+\.\d+\.\d+"),
        ("torchserve", r"pytorch/torchserve:\d+\.\d+\.\d+-cpu"),
    ],
)
def test_official_images_with_pinned_versions(services: dict[str, dict], service: str, image: str) -> None:
    assert re.fullmatch(image, services[service]["image"])
    assert "latest" not in services[service]["image"]


@pytest.mark.parametrize("service", ["tfserving", "torchserve"])
def test_ports_are_the_standard_ones_on_loopback_only(services: dict[str, dict], service: str) -> None:
    expected = {f"127.0.0.1:{port}:{port}" for port in Ports().of(service).values()}
    assert set(services[service]["ports"]) == expected


@pytest.mark.parametrize(
    ("service", "source", "target"),
    [
        ("tfserving", "./artifacts/tfserving/linear", "/models/linear"),
        ("torchserve", "./artifacts/torchserve", "/home/model-server/model-store"),
        ("tfserving", "./docker/tfserving", "/config"),
        ("torchserve", "./docker/torchserve/config.properties", "/home/model-server/config.properties"),
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


def test_tf_serving_serves_the_model_named_linear(services: dict[str, dict]) -> None:
    assert services["tfserving"]["environment"]["MODEL_NAME"] == "linear"
    command = services["tfserving"]["command"]
    assert "--batching_parameters_file=/config/batching_parameters.txt" in command
    assert (ROOT / "docker/tfserving/batching_parameters.txt").read_text().count("{ value:") == 4


@pytest.mark.parametrize("service", ["tfserving", "torchserve"])
def test_healthcheck_and_restart_policy(services: dict[str, dict], service: str) -> None:
    check = services[service]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert "curl" not in " ".join(check["test"])  # neither image is guaranteed to have curl
    assert services[service]["restart"] == "unless-stopped"


def test_equal_cpu_and_memory_limits(services: dict[str, dict]) -> None:
    tfs, ts = services["tfserving"], services["torchserve"]
    assert tfs["cpus"] == ts["cpus"]
    assert tfs["mem_limit"] == ts["mem_limit"]


def test_container_torchserve_config_matches_the_generator() -> None:
    """The mounted config.properties is what serving/torchserve.py would write for the container."""
    path = ROOT / "docker/torchserve/config.properties"
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    committed = dict(line.split("=", 1) for line in lines)
    generated = config_properties(
        ports=Ports(),
        settings=ServerSettings(),
        model_store=Path("/home/model-server/model-store"),
        host="0.0.0.0",
    )
    assert committed == generated


def test_docker_compose_accepts_the_file() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose): static checks only")
    result = subprocess.run(
        [compose, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
