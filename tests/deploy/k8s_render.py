"""The part of kustomize that deploy/kubernetes uses, in Python, so the tests run without kubectl.

Supported (and nothing else, with a clear error): `resources` (files and kustomization folders),
`components`, `namespace`, `configMapGenerator` with `files` / `envs` / `literals` / `behavior`,
JSON 6902 `patches` by `target` kind, name and label selector, `replicas`, `images`. Generated
ConfigMaps keep their plain names (kustomize appends a content hash, and rewrites the references
to it); `strip_hash_suffixes` makes kustomize's own output comparable, which
test_kubernetes_render.py does wherever kubectl is installed.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
JOB = KUBERNETES / "inferload-job"

SUPPORTED = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "components",
    "configMapGenerator",
    "patches",
    "replicas",
    "images",
}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


class UnsupportedKustomization(ValueError):
    """The kustomization uses a feature this renderer does not implement."""


def load_kustomization(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "kustomization.yaml").read_text())


def render(root: Path, components: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """What `kustomize build --load-restrictor LoadRestrictionsNone root` prints; `components` are
    added as if listed under the kustomization's own `components:`."""
    kustomization = load_kustomization(root)
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{root}/kustomization.yaml: not supported here: {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = root / entry
        if path.is_dir():
            docs += render(path)
        elif path.is_file():
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        else:
            raise UnsupportedKustomization(f"resource {entry!r} is neither a file nor a folder")
    # kustomize's order: own generators, then the components (theirs can replace ours), own patches
    generate(root, kustomization, docs)
    for component in [root / c for c in kustomization.get("components", [])] + list(components):
        generate(component, load_kustomization(component), docs)
        patch(component, load_kustomization(component), docs)
    patch(root, kustomization, docs)
    for replica in kustomization.get("replicas", []):
        targets = [d for d in docs if d["metadata"]["name"] == replica["name"] and "replicas" in d["spec"]]
        if not targets:
            raise UnsupportedKustomization(f"replicas: no resource named {replica['name']!r}")
        for doc in targets:
            doc["spec"]["replicas"] = replica["count"]
    for image in kustomization.get("images", []):
        for container in all_containers(docs):
            container["image"] = set_image(container["image"], image)
    namespace = kustomization.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
    return docs


def generate(root: Path, kustomization: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{root}/kustomization.yaml: not supported here: {sorted(unknown)}")
    for spec in kustomization.get("configMapGenerator", []):
        generated = config_map(root, spec)
        behavior = spec.get("behavior", "create")
        existing = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == spec["name"]]
        if behavior == "create":
            if existing:
                raise UnsupportedKustomization(
                    f"ConfigMap {spec['name']} exists: use behavior merge or replace"
                )
            docs.append(generated)
        elif len(existing) != 1:
            raise UnsupportedKustomization(f"behavior {behavior}: no ConfigMap {spec['name']} to change")
        elif behavior == "replace":
            existing[0]["data"] = generated["data"]
        elif behavior == "merge":
            existing[0]["data"].update(generated["data"])
        else:
            raise UnsupportedKustomization(f"configMapGenerator behavior {behavior!r}")


def patch(root: Path, kustomization: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    for entry in kustomization.get("patches", []):
        apply_patch(root, entry, docs)


def config_map(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {"name", "files", "envs", "literals", "behavior"}
    if unknown:
        raise UnsupportedKustomization(f"configMapGenerator {spec['name']}: not supported here: {unknown}")
    data: dict[str, str] = {}
    for entry in spec.get("files", []):
        key, _, path = entry.rpartition("=")
        file = root / path
        data[key or file.name] = file.read_text()
    for env_file in spec.get("envs", []):
        data.update(read_env_file(root / env_file))
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec["name"]},
        "data": data,
    }


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and `#` comments skipped (kustomize's `envs` format)."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key] = value
    return values


def apply_patch(root: Path, patch: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    operations = yaml.safe_load((root / patch["path"]).read_text())
    if not isinstance(operations, list):
        raise UnsupportedKustomization(
            f"patch {patch['path']}: only JSON 6902 patches (a list) are supported"
        )
    target = patch.get("target", {})
    unknown = set(target) - {"kind", "labelSelector", "name"}
    if unknown:
        raise UnsupportedKustomization(f"patch target {target}: not supported here: {unknown}")
    matched = [doc for doc in docs if matches(doc, target)]
    if not matched:
        raise UnsupportedKustomization(f"patch {patch['path']}: its target {target} matches nothing")
    for doc in matched:
        for operation in operations:
            apply_operation(doc, operation)


def matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    if "kind" in target and doc["kind"] != target["kind"]:
        return False
    if "name" in target and doc["metadata"]["name"] != target["name"]:
        return False
    labels = doc["metadata"].get("labels", {})
    for term in filter(None, target.get("labelSelector", "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def apply_operation(doc: dict[str, Any], operation: dict[str, Any]) -> None:
    if operation["op"] not in ("add", "replace"):
        raise UnsupportedKustomization(f"JSON patch op {operation['op']!r} is not supported here")
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if operation["op"] == "add":
            node.insert(index, copy.deepcopy(operation["value"]))
        else:
            node[index] = copy.deepcopy(operation["value"])
    else:
        if operation["op"] == "replace" and last not in node:
            raise KeyError(f"JSON patch replace: {operation['path']} does not exist")
        node[last] = copy.deepcopy(operation["value"])


def all_containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            found += spec.get("initContainers", []) + spec.get("containers", [])
    return found


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "Pod":
        return doc["spec"]
    return None


_IMAGE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>\S+))?$")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/a/b:tag@sha256:...` -> (name, tag, digest); a registry port is not a tag."""
    match = _IMAGE.match(image)
    if match is None:
        raise ValueError(f"not an image reference: {image!r}")
    name, tag = match["name"], match["tag"]
    if tag is not None and "/" in tag:  # the colon was a registry port
        name, tag = f"{name}:{tag}", None
    return name, tag, match["digest"]


def set_image(image: str, rule: dict[str, Any]) -> str:
    name, tag, digest = split_image(image)
    if name != rule["name"]:
        return image
    name = rule.get("newName", name)
    if "digest" in rule:
        return f"{name}@{rule['digest']}"
    tag = rule.get("newTag", tag)
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest and "newTag" not in rule else "")


def strip_hash_suffixes(docs: list[dict[str, Any]], generated: list[str]) -> list[dict[str, Any]]:
    """kustomize's output with `name-<hash>` of each generated ConfigMap turned back into `name`."""
    text = yaml.safe_dump_all(docs, sort_keys=True)
    for name in generated:
        text = re.sub(rf"\b{re.escape(name)}-[a-z0-9]{{10}}\b", name, text)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]], deployment: str, name: str | None = None) -> dict[str, Any]:
    spec = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    containers = spec["containers"] if name is None else [c for c in spec["containers"] if c["name"] == name]
    assert len(containers) == 1, f"{deployment}: expected one container {name or ''}"
    return containers[0]


def kubectl_kustomize(root: Path) -> list[dict[str, Any]] | str:
    """kustomize's own rendering (kubectl's built-in kustomize), or why it cannot be had here."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not installed: the Python renderer is not cross-checked here"
    result = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0 and "unknown flag" in result.stderr:
        return f"this kubectl has no kustomize v4+ built in: {result.stderr.strip()}"
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {root} failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
