"""deploy/kubernetes/components/batching: server-side batching on for both servers, as
docker/batching.override.yml does for compose. TF Serving gets --enable_batching=true and its
parameters file together (tensorflow_model_server refuses the file alone), never one of them
without the component; TorchServe gets config.batching.properties."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from capabilities import unavailable
from k8s_render import KUBERNETES, ROOT, container, find, kubectl_kustomize, render, strip_hash_suffixes

BATCHING = KUBERNETES / "components" / "batching"
FLAGS = ("--enable_batching=true", "--batching_parameters_file=/config/batching_parameters.txt")


@pytest.fixture(scope="module")
def batching_docs() -> list[dict[str, Any]]:
    return render(KUBERNETES, components=(BATCHING,))


@pytest.mark.parametrize("version", ["1.34", "1.37"])
def test_manifests_with_batching_are_valid(batching_docs: list[dict[str, Any]], version: str) -> None:
    for doc in batching_docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_tf_serving_gets_both_batching_flags_together(batching_docs: list[dict[str, Any]]) -> None:
    args = container(batching_docs, "tfserving", "tfserving")["args"]
    assert all(flag in args for flag in FLAGS)


def test_without_the_component_tf_serving_gets_neither(stack_docs: list[dict[str, Any]]) -> None:
    args = container(stack_docs, "tfserving", "tfserving")["args"]
    assert not any(arg.startswith(("--enable_batching", "--batching_parameters_file")) for arg in args)


def test_the_batching_parameters_file_is_mounted(batching_docs: list[dict[str, Any]]) -> None:
    tfserving = container(batching_docs, "tfserving", "tfserving")
    path = Path(FLAGS[1].split("=", 1)[1])
    (mount,) = [m for m in tfserving["volumeMounts"] if m["mountPath"] == str(path.parent)]
    spec = find(batching_docs, "Deployment", "tfserving")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert path.name in find(batching_docs, "ConfigMap", volume["configMap"]["name"])["data"]


def test_tf_serving_flags_match_compose_batching_override(batching_docs: list[dict[str, Any]]) -> None:
    override = yaml.safe_load((ROOT / "docker" / "batching.override.yml").read_text())["services"]
    in_compose = {arg.split("=")[0] for arg in override["tfserving"]["command"]}
    args = container(batching_docs, "tfserving", "tfserving")["args"]
    assert {arg.split("=")[0] for arg in args} == in_compose


def test_torchserve_batches(batching_docs: list[dict[str, Any]]) -> None:
    properties = find(batching_docs, "ConfigMap", "torchserve-config")["data"]["config.properties"]
    assert properties == (ROOT / "docker" / "torchserve" / "config.batching.properties").read_text()
    assert '"batchSize": 1,' not in properties


def test_python_rendering_matches_kustomize(tmp_path: Path, batching_docs: list[dict[str, Any]]) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(KUBERNETES, overlay)],
                "components": [os.path.relpath(BATCHING, overlay)],
            }
        )
    )
    theirs = kubectl_kustomize(overlay)
    if isinstance(theirs, str):
        unavailable("kubectl", theirs)
    names = [d["metadata"]["name"] for d in batching_docs if d["kind"] == "ConfigMap"]
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted(strip_hash_suffixes(theirs, names), key=key) == sorted(
        strip_hash_suffixes(batching_docs, names), key=key
    )
