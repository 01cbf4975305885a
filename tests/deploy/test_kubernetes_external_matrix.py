"""deploy/kubernetes/external-matrix.yaml: an `inferload run` matrix whose `external` target is the
Services of deploy/kubernetes. Validated by inferload's own experiment schema, and checked to name
the Services' real ports and paths, the model the load parameters describe, and (rewritten for
`kubectl port-forward` as README.md shows) loopback addresses that still validate."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from k8s_render import KUBERNETES, find, pod_spec

from inferload import experiments

MATRIX = KUBERNETES / "external-matrix.yaml"
# README.md's port-forward line: sed -E 's#(//|grpc: )(tfserving|torchserve|triton):#\1127.0.0.1:#'
PORT_FORWARD = (r"(//|grpc: )(tfserving|torchserve|triton):", r"\g<1>127.0.0.1:")

# Each endpoint of the target -> (Service, port name) that must serve it.
ENDPOINTS = {
    ("tfserving", "rest"): ("tfserving", "rest"),
    ("tfserving", "grpc"): ("tfserving", "grpc"),
    ("tfserving", "metrics"): ("tfserving", "rest"),
    ("torchserve", "rest"): ("torchserve", "inference"),
    ("torchserve", "grpc"): ("torchserve", "grpc"),
    ("torchserve", "management"): ("torchserve", "management"),
    ("torchserve", "metrics"): ("torchserve", "metrics"),
    ("triton", "rest"): ("triton", "http"),
    ("triton", "grpc"): ("triton", "grpc"),
    ("triton", "metrics"): ("triton", "metrics"),
}


@pytest.fixture(scope="module")
def matrix() -> Any:
    return experiments.load_experiment(MATRIX)


def test_matrix_is_valid_with_an_external_target(matrix: Any) -> None:
    assert matrix.target.kind == "external"
    assert set(matrix.target.servers) == set(matrix.servers) == {"tfserving", "torchserve", "triton"}


@pytest.mark.parametrize(("server", "endpoint"), list(ENDPOINTS))
def test_endpoints_are_the_services_ports(
    matrix: Any, stack_docs: list[dict[str, Any]], server: str, endpoint: str
) -> None:
    address = getattr(matrix.target.servers[server], endpoint)
    assert address is not None, f"{server}.{endpoint} is not set"
    parts = urlsplit(address if "://" in address else f"//{address}")
    service_name, port_name = ENDPOINTS[(server, endpoint)]
    service = find(stack_docs, "Service", parts.hostname)
    assert service["metadata"]["name"] == service_name
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert parts.port == ports[port_name]


@pytest.mark.parametrize("server", ["tfserving", "torchserve", "triton"])
def test_metrics_path_is_the_one_the_pod_announces(
    matrix: Any, stack_docs: list[dict[str, Any]], server: str
) -> None:
    annotations = find(stack_docs, "Deployment", server)["spec"]["template"]["metadata"]["annotations"]
    assert urlsplit(matrix.target.servers[server].metrics).path == annotations["prometheus.io/path"]


def test_matrix_measures_the_model_the_load_parameters_describe(
    matrix: Any, stack_docs: list[dict[str, Any]]
) -> None:
    parameters = find(stack_docs, "ConfigMap", "load-parameters")["data"]
    assert int(parameters["FEATURES"]) in (0, matrix.model.features)  # 0: Locust asks the server
    assert matrix.target.model_name == parameters["MODEL_NAME"]


def test_the_job_runs_this_matrix(job_docs: list[dict[str, Any]]) -> None:
    matrix_map = find(job_docs, "ConfigMap", "inferload-matrix")
    assert matrix_map["data"] == {MATRIX.name: MATRIX.read_text()}
    job = find(job_docs, "Job", "inferload")
    spec = pod_spec(job)
    (main,) = spec["containers"]
    volume = next(
        v["name"] for v in spec["volumes"] if v.get("configMap", {}).get("name") == "inferload-matrix"
    )
    mount = next(m["mountPath"] for m in main["volumeMounts"] if m["name"] == volume)
    assert f"inferload run {mount}/{MATRIX.name} " in main["command"][-1]


def test_port_forward_variant_targets_loopback_and_validates(tmp_path: Any) -> None:
    text = re.sub(*PORT_FORWARD, MATRIX.read_text())
    assert "//tfserving:" not in text and "grpc: torchserve:" not in text and "//triton:" not in text
    path = tmp_path / "port-forward.yaml"
    path.write_text(text)
    target = experiments.load_experiment(path).target
    addresses = [
        getattr(endpoints, field)
        for endpoints in target.servers.values()
        for field in ("rest", "grpc", "management", "metrics")
        if getattr(endpoints, field)
    ]
    assert addresses and all("127.0.0.1:" in address for address in addresses)
