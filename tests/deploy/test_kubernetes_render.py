"""tests/deploy/k8s_render.py renders deploy/kubernetes as kustomize does: checked against the real
kustomize in kubectl wherever kubectl is installed (skipped elsewhere), and unit-checked where it
parses image references."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from capabilities import unavailable
from k8s_render import (
    JOB,
    KUBERNETES,
    kubectl_kustomize,
    load_kustomization,
    render,
    set_image,
    split_image,
    strip_hash_suffixes,
)


def _kubectl_kustomize(root: Path) -> list[dict[str, Any]]:
    docs = kubectl_kustomize(root)
    if isinstance(docs, str):
        unavailable("kubectl", docs)
    return docs


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.mark.parametrize("root", [KUBERNETES, JOB], ids=["stack", "inferload-job"])
def test_python_rendering_matches_kustomize(root: Path) -> None:
    generated = [g["name"] for g in load_kustomization(root).get("configMapGenerator", [])]
    theirs = strip_hash_suffixes(_kubectl_kustomize(root), generated)
    ours = strip_hash_suffixes(render(root), generated)  # the same YAML round trip
    assert sorted(map(_key, ours)) == sorted(map(_key, theirs))
    by_key = {_key(doc): doc for doc in theirs}
    for doc in ours:
        assert doc == by_key[_key(doc)], f"{_key(doc)} differs from kustomize's rendering"


def test_kustomize_gives_generated_configmaps_a_content_hash() -> None:
    """Why a changed locustfile or parameter restarts the pods: the ConfigMap's name changes with it."""
    generated = "|".join(g["name"] for g in load_kustomization(KUBERNETES)["configMapGenerator"])
    names = [d["metadata"]["name"] for d in _kubectl_kustomize(KUBERNETES) if d["kind"] == "ConfigMap"]
    assert len(names) == len(load_kustomization(KUBERNETES)["configMapGenerator"])
    for name in names:
        assert re.fullmatch(rf"({generated})-[a-z0-9]{{10}}", name), name


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", ("busybox", None, None)),
        ("tensorflow/serving:2.18.0", ("tensorflow/serving", "2.18.0", None)),
        (
            "registry.example.com:5000/inferload/locust",
            ("registry.example.com:5000/inferload/locust", None, None),
        ),
        ("registry.example.com:5000/a/b:1.0", ("registry.example.com:5000/a/b", "1.0", None)),
        ("a/b@sha256:" + "0" * 64, ("a/b", None, "sha256:" + "0" * 64)),
    ],
)
def test_image_references_split_into_name_tag_digest(image: str, expected: tuple[Any, ...]) -> None:
    assert split_image(image) == expected


@pytest.mark.parametrize(
    ("image", "rule", "expected"),
    [
        (
            "inferload/locust:2.47.0",
            {"name": "inferload/locust", "newName": "r.io/x/locust"},
            "r.io/x/locust:2.47.0",
        ),
        (
            "inferload/locust:2.47.0",
            {"name": "inferload/locust", "newTag": "2.47.1"},
            "inferload/locust:2.47.1",
        ),
        ("inferload/locust:2.47.0", {"name": "other/locust", "newTag": "9"}, "inferload/locust:2.47.0"),
        (
            "inferload/locust:1",
            {"name": "inferload/locust", "digest": "sha256:ab"},
            "inferload/locust@sha256:ab",
        ),
    ],
)
def test_image_rules_apply_as_kustomize_images(image: str, rule: dict[str, str], expected: str) -> None:
    assert set_image(image, rule) == expected
