"""deploy/docker: the images the Kubernetes manifests run. No Docker engine here, so each Dockerfile
is checked for what would silently go wrong in the cluster: a Locust image missing a package that
loadtest/ imports, or installing another version than the one the project tested (pyproject.toml)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
from k8s_render import ROOT, find, pod_spec, split_image

DOCKER = ROOT / "deploy" / "docker"
# Import name -> distribution, for what loadtest/ (and the generated stubs it loads) may import.
DISTRIBUTIONS = {
    "gevent": "gevent",
    "geventhttpclient": "geventhttpclient",
    "grpc": "grpcio",
    "google": "protobuf",
    "numpy": "numpy",
    "orjson": "orjson",
    "pydantic": "pydantic",
    "psutil": "psutil",
    "uvloop": "uvloop",
    "locust": "locust",
}
# Locust's own dependencies (its web UI and --web-login), in the locustio/locust base image with Locust.
WITH_LOCUST = {"flask", "flask_login"}
# loadtest/, the stubs package it encodes with and the formats package it writes records with; never
# the CLI package `inferload` (DESIGN.md 8).
OWN_PACKAGES = {"loadtest", "inferload_protos", "inferload_formats"}
# Imported inside functions that Locust users never call: not needed in the Locust image.
NOT_ON_THE_LOCUST_PATH = {
    "httptools": "loadtest._aio_transports (the load worker's HTTP client, `inferload load` only)",
    "hpack": "loadtest._h2grpc (the load worker's gRPC client, `inferload load` only)",
    "pandas": "loadtest._schema.read_run (reading results)",
    "rich": "loadtest._runner's progress bar (`inferload load`)",
    "scipy": "loadtest._percentiles.quantile_interval (early stopping, `inferload load` only)",
}


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def _installed(dockerfile: Path, stage: int = -1) -> dict[str, str]:
    """name==version arguments of the `pip install` lines in one build stage (default: the last)."""
    stages = re.split(r"^FROM ", dockerfile.read_text(), flags=re.MULTILINE)[1:]
    return {
        name.lower(): version
        for name, version in re.findall(r"\b([A-Za-z0-9_.-]+)==([^\s\\]+)", stages[stage])
    }


def _top_level_imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _third_party_imports(folder: Path) -> set[str]:
    return _top_level_imports(folder) - set(sys.stdlib_module_names) - {"__future__"} - OWN_PACKAGES


def test_locust_image_installs_everything_loadtest_imports() -> None:
    imports = _third_party_imports(ROOT / "loadtest") - set(NOT_ON_THE_LOCUST_PATH) - WITH_LOCUST
    unknown = imports - set(DISTRIBUTIONS)
    assert not unknown, f"loadtest/ imports {unknown}: add them to deploy/docker/locust.Dockerfile and here"
    installed = _installed(DOCKER / "locust.Dockerfile")
    needed = {DISTRIBUTIONS[name] for name in imports} | {"protobuf"}  # the stubs need protobuf
    assert needed <= set(installed), f"missing from locust.Dockerfile: {needed - set(installed)}"


def test_locust_image_carries_the_stubs_package_that_loadtest_imports() -> None:
    """loadtest/ reaches the generated stubs through their own package, which the image generates and
    puts on the path; the CLI package is not in the image, so loadtest/ must not import it."""
    found = _top_level_imports(ROOT / "loadtest")
    assert "inferload" not in found, "loadtest/ imports the CLI package `inferload`"
    assert "inferload_protos" in found
    dockerfile = (DOCKER / "locust.Dockerfile").read_text()
    assert "python -m inferload_protos" in dockerfile
    assert "/opt/inferload/inferload_protos" in dockerfile


@pytest.mark.parametrize("dockerfile", ["locust.Dockerfile"])
def test_images_install_the_versions_pyproject_pins(dockerfile: str) -> None:
    pins = _pins()
    for stage in (0, -1):
        for name, version in _installed(DOCKER / dockerfile, stage).items():
            assert pins.get(name) == version, (
                f"{dockerfile}: {name}=={version}, pyproject.toml pins {pins.get(name)}"
            )


def test_locust_image_is_built_on_the_pinned_locust() -> None:
    base = re.findall(r"^FROM (\S+)", (DOCKER / "locust.Dockerfile").read_text(), re.MULTILINE)[-1]
    assert base == f"locustio/locust:{_pins()['locust']}"


def test_manifests_run_the_locust_image_tagged_with_its_locust_version(stack_docs: list[dict]) -> None:
    for name in ("locust-master", "locust-worker"):
        (container,) = pod_spec(find(stack_docs, "Deployment", name))["containers"]
        assert split_image(container["image"])[1] == _pins()["locust"]


def test_inferload_image_installs_the_pinned_torch() -> None:
    """torch from the CPU wheel index at the pinned version; the rest comes from `pip install .`."""
    installed = _installed(DOCKER / "inferload.Dockerfile")
    assert installed == {"torch": _pins()["torch"]}


def test_artifacts_image_holds_what_the_init_containers_copy(stack_docs: list[dict]) -> None:
    dockerfile = (DOCKER / "artifacts.Dockerfile").read_text()
    for server, needed in (
        ("tfserving", "tfserving/linear/1/saved_model.pb"),
        ("torchserve", "torchserve/linear.mar"),
    ):
        (init,) = pod_spec(find(stack_docs, "Deployment", server))["initContainers"]
        assert f"/artifacts/{needed}" in init["command"][-1]
        assert f"/artifacts/{needed}" in dockerfile  # the build refuses an incomplete export


@pytest.mark.parametrize("dockerfile", ["locust.Dockerfile", "inferload.Dockerfile"])
def test_root_context_builds_ignore_the_virtualenv(dockerfile: str) -> None:
    """Their build context is the repository root: without an ignore file `.venv` (GBs) is sent."""
    text = (DOCKER / f"{dockerfile}.dockerignore").read_text()
    patterns = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert ".venv" in patterns or patterns[0] == "*"  # excluded by name, or everything not allow-listed
