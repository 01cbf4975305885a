"""deploy/kubernetes, checked offline: every manifest valid against the Kubernetes schemas that
kubernetes-validate bundles (strict: an unknown or misspelt field fails), and what a schema cannot
see: both servers under the same whole-CPU limits and told them as compose tells them, the
standard ports, probes that prove the model is loaded, our current loadtest/*.py in the Locust
ConfigMap, and every `$(VAR)` in an argument defined (the kubelet leaves an undefined one as text)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_render import KUBERNETES, ROOT, container, find, load_kustomization, pod_spec, render

from serving.ports import Ports

# The oldest and newest Kubernetes minor whose schemas kubernetes-validate bundles; README states it.
KUBERNETES_VERSIONS = ("1.34", "1.37")
SERVERS = ("tfserving", "torchserve", "triton")
MODEL = "linear"
VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _all_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = [("stack", doc) for doc in render(KUBERNETES)]
    docs += [("inferload-job", doc) for doc in render(KUBERNETES / "inferload-job")]
    return docs


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "doc",
    [doc for _, doc in _all_docs()],
    ids=[f"{where}-{d['kind']}-{d['metadata']['name']}" for where, d in _all_docs()],
)
def test_every_manifest_is_valid_for_the_stated_kubernetes_versions(
    doc: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_a_misspelt_field(stack_docs: list[dict[str, Any]]) -> None:
    """Guards the test above: strict validation really looks inside the pod template."""
    broken = yaml.safe_load(yaml.safe_dump(find(stack_docs, "Deployment", "tfserving")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_validation_needs_no_network(
    stack_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schemas ship inside kubernetes-validate: nothing is fetched (CI has no network)."""
    import socket

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("kubernetes-validate tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for doc in stack_docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


def test_everything_runs_in_the_inferload_namespace(stack_docs: list[dict[str, Any]]) -> None:
    namespaced = [d for d in stack_docs if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"inferload"}
    assert find(stack_docs, "Namespace", "inferload")


# --- the two servers: same resources, told their CPU limit ------------------------------------------


def _resources(stack_docs: list[dict[str, Any]], server: str) -> dict[str, Any]:
    return container(stack_docs, server, server)["resources"]


def test_every_server_gets_the_same_cpu_and_memory(stack_docs: list[dict[str, Any]]) -> None:
    tfserving, *others = (_resources(stack_docs, server) for server in SERVERS)
    assert all(other == tfserving for other in others)
    assert tfserving["limits"]["cpu"] and tfserving["limits"]["memory"]


@pytest.mark.parametrize("server", SERVERS)
def test_servers_get_guaranteed_whole_cpus(stack_docs: list[dict[str, Any]], server: str) -> None:
    """requests == limits, whole CPUs: Guaranteed QoS, own cores under the static CPU manager policy."""
    resources = _resources(stack_docs, server)
    assert resources["requests"] == resources["limits"]
    assert re.fullmatch(r"[1-9][0-9]*", str(resources["limits"]["cpu"]))


@pytest.mark.parametrize("server", SERVERS)
def test_server_pods_are_guaranteed_qos(stack_docs: list[dict[str, Any]], server: str) -> None:
    """Kubernetes grants Guaranteed only when every container, init containers included, has
    requests equal to limits for both CPU and memory."""
    spec = pod_spec(find(stack_docs, "Deployment", server))
    for c in spec.get("initContainers", []) + spec["containers"]:
        resources = c["resources"]
        for resource in ("cpu", "memory"):
            assert resources["requests"][resource] == resources["limits"][resource], f"{c['name']} {resource}"


def _cpu_limit(stack_docs: list[dict[str, Any]]) -> int:
    return int(_resources(stack_docs, "tfserving")["limits"]["cpu"])


def _env(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in spec.get("env", [])}


def _reads_own_cpu_limit(entry: dict[str, Any], container_name: str) -> bool:
    field = entry.get("valueFrom", {}).get("resourceFieldRef", {})
    return (
        field.get("resource") == "limits.cpu"
        and field.get("containerName") == container_name
        and str(field.get("divisor", "1")) == "1"
    )


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_tf_serving_thread_pools_follow_its_cpu_limit_as_in_compose(stack_docs: list[dict[str, Any]]) -> None:
    tfserving = container(stack_docs, "tfserving", "tfserving")
    env = _env(tfserving)
    assert _reads_own_cpu_limit(env["SERVER_CPUS"], "tfserving")
    told = {arg.split("=")[0] for arg in tfserving["args"] if "$(SERVER_CPUS)" in arg}
    in_compose = {arg.split("=")[0] for arg in _compose()["tfserving"]["command"] if "SERVER_CPUS" in arg}
    assert told == in_compose
    assert told >= {"--tensorflow_intra_op_parallelism", "--tensorflow_inter_op_parallelism"}


def test_tf_serving_rest_and_grpc_threads_are_four_per_cpu(stack_docs: list[dict[str, Any]]) -> None:
    """What TF Serving would pick on a machine of the limit's size (compose's default: 8 for 2 CPUs)."""
    parameters = find(stack_docs, "ConfigMap", "server-parameters")["data"]
    assert int(parameters["TFSERVING_REST_THREADS"]) == 4 * _cpu_limit(stack_docs)
    args = container(stack_docs, "tfserving", "tfserving")["args"]
    assert "--rest_api_num_threads=$(TFSERVING_REST_THREADS)" in args
    assert "--grpc_max_threads=$(TFSERVING_REST_THREADS)" in args


def test_torchserve_thread_pools_follow_its_cpu_limit_as_in_compose(stack_docs: list[dict[str, Any]]) -> None:
    env = _env(container(stack_docs, "torchserve", "torchserve"))
    told = {name for name, entry in env.items() if _reads_own_cpu_limit(entry, "torchserve")}
    compose_env = _compose()["torchserve"].get("environment", {})
    in_compose = {name for name, value in compose_env.items() if "SERVER_CPUS" in str(value)}
    assert told == in_compose
    assert told >= {"TS_NUMBER_OF_NETTY_THREADS", "OMP_NUM_THREADS"}


def test_triton_thread_pools_follow_its_cpu_limit_as_in_compose(stack_docs: list[dict[str, Any]]) -> None:
    triton = container(stack_docs, "triton", "triton")
    env = _env(triton)
    told = {name for name, entry in env.items() if _reads_own_cpu_limit(entry, "triton")}
    assert told == {"SERVER_CPUS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    assert "--http-thread-count=$(SERVER_CPUS)" in triton["command"]
    compose = _compose()["triton"]
    assert {n for n, v in compose["environment"].items() if "SERVER_CPUS" in str(v)} == told - {"SERVER_CPUS"}


def test_triton_is_ready_only_with_the_model_ready_and_has_shared_memory(
    stack_docs: list[dict[str, Any]],
) -> None:
    triton = container(stack_docs, "triton", "triton")
    for kind in ("readinessProbe", "startupProbe"):
        assert triton[kind]["httpGet"]["path"] == f"/v2/models/{MODEL}/ready"
        assert _probe_port(stack_docs, "triton", triton[kind]) == STANDARD.triton_http
    pod = pod_spec(find(stack_docs, "Deployment", "triton"))
    shm = next(m["name"] for m in triton["volumeMounts"] if m["mountPath"] == "/dev/shm")
    assert next(v for v in pod["volumes"] if v["name"] == shm)["emptyDir"]["medium"] == "Memory"


def test_torchserve_reads_the_ts_variables(stack_docs: list[dict[str, Any]]) -> None:
    """Without enable_envvars_config=true TorchServe ignores TS_* variables: the limit would be lost."""
    properties = find(stack_docs, "ConfigMap", "torchserve-config")["data"]["config.properties"]
    assert re.search(r"^enable_envvars_config=true$", properties, re.MULTILINE)


def test_servers_start_with_the_flags_compose_gives_them(stack_docs: list[dict[str, Any]]) -> None:
    """Same server, same options: only values that come from the CPU limit are spelt differently."""
    compose = _compose()
    tfserving = container(stack_docs, "tfserving", "tfserving")
    assert {a.split("=")[0] for a in tfserving["args"]} == {
        a.split("=")[0] for a in compose["tfserving"]["command"]
    }
    assert container(stack_docs, "torchserve", "torchserve")["command"] == compose["torchserve"]["command"]
    triton = container(stack_docs, "triton", "triton")["command"]
    assert [a.split("=")[0] for a in triton] == [a.split("=")[0] for a in compose["triton"]["command"]]


# --- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_servers_run_the_images_compose_runs(stack_docs: list[dict[str, Any]], server: str) -> None:
    assert container(stack_docs, server, server)["image"] == _compose()[server]["image"]


def test_both_servers_copy_their_model_from_one_artifacts_image(stack_docs: list[dict[str, Any]]) -> None:
    """Byte for byte the same export for both servers: one image, copied before the server starts."""
    images = {
        c["image"] for s in SERVERS for c in pod_spec(find(stack_docs, "Deployment", s))["initContainers"]
    }
    assert len(images) == 1, f"the servers copy their model from different images: {images}"


@pytest.mark.parametrize(
    ("server", "model_dir"),
    [("tfserving", "$(MODEL_BASE_PATH)"), ("torchserve", "--model-store"), ("triton", "--model-repository")],
)
def test_the_copied_model_is_where_the_server_reads_it(
    stack_docs: list[dict[str, Any]], server: str, model_dir: str
) -> None:
    pod = pod_spec(find(stack_docs, "Deployment", server))
    (init,) = pod["initContainers"]
    main = container(stack_docs, server, server)
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    main_mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    (volume,) = init_mounts  # the init container writes into one emptyDir
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == volume)
    copy_command = init["command"][-1]
    assert f"{init_mounts[volume]}/" in copy_command
    if model_dir == "--model-repository":
        reads = next(a.split("=", 1)[1] for a in main["command"] if a.startswith(f"{model_dir}="))
    elif model_dir.startswith("--"):
        reads = main["command"][main["command"].index(model_dir) + 1]
    else:
        reads = _env(main)["MODEL_BASE_PATH"]["value"]
    assert main_mounts[volume] == reads


# --- ports ----------------------------------------------------------------------------------------

STANDARD = Ports()
SERVICE_PORTS = {
    "tfserving": {"grpc": STANDARD.tfserving_grpc, "rest": STANDARD.tfserving_rest},
    "torchserve": {
        "inference": STANDARD.torchserve_inference,
        "management": STANDARD.torchserve_management,
        "metrics": STANDARD.torchserve_metrics,
        "grpc": STANDARD.torchserve_grpc,
        "grpc-management": STANDARD.torchserve_grpc_management,
    },
    "triton": {
        "http": STANDARD.triton_http, "grpc": STANDARD.triton_grpc, "metrics": STANDARD.triton_metrics
    },
    "locust-master": {"web": 8089, "master": 5557},
}


def _container_ports(stack_docs: list[dict[str, Any]], deployment: str) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(stack_docs, deployment).get("ports", [])}


@pytest.mark.parametrize("name", list(SERVICE_PORTS))
def test_services_expose_the_standard_ports(stack_docs: list[dict[str, Any]], name: str) -> None:
    """The same ports as `inferload serve up` and compose, so clients only change the host name."""
    service = find(stack_docs, "Service", name)
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == SERVICE_PORTS[name]
    container_ports = _container_ports(stack_docs, name)
    assert container_ports == SERVICE_PORTS[name]
    for port in service["spec"]["ports"]:
        assert container_ports[port["targetPort"]] == port["port"]


@pytest.mark.parametrize("name", list(SERVICE_PORTS))
def test_services_select_their_own_pods(stack_docs: list[dict[str, Any]], name: str) -> None:
    selector = find(stack_docs, "Service", name)["spec"]["selector"]
    labels = find(stack_docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    others = [d for d in stack_docs if d["kind"] == "Deployment" and d["metadata"]["name"] != name]
    for other in others:
        assert not selector.items() <= other["spec"]["template"]["metadata"]["labels"].items()


# --- probes ---------------------------------------------------------------------------------------


def _probe_port(stack_docs: list[dict[str, Any]], server: str, probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    return _container_ports(stack_docs, server)[port] if isinstance(port, str) else port


def test_tf_serving_is_ready_only_with_the_model_loaded(stack_docs: list[dict[str, Any]]) -> None:
    """The metadata API needs a handle on a loaded servable: 404 while loading or after a failed load."""
    tfserving = container(stack_docs, "tfserving", "tfserving")
    for kind in ("readinessProbe", "startupProbe"):
        probe = tfserving[kind]
        assert probe["httpGet"]["path"] == f"/v1/models/{MODEL}/metadata"
        assert _probe_port(stack_docs, "tfserving", probe) == STANDARD.tfserving_rest


def test_torchserve_is_ready_only_with_a_model_worker_ready(stack_docs: list[dict[str, Any]]) -> None:
    command = " ".join(container(stack_docs, "torchserve", "torchserve")["readinessProbe"]["exec"]["command"])
    assert f"http://127.0.0.1:{STANDARD.torchserve_management}/models/{MODEL}" in command
    assert "'READY'" in command


def test_torchserve_readiness_check_runs(stack_docs: list[dict[str, Any]]) -> None:
    """The probe's Python is valid and decides on READY workers (management API answer stubbed)."""
    argv = container(stack_docs, "torchserve", "torchserve")["readinessProbe"]["exec"]["command"]
    assert argv[:2] == ["python", "-c"]
    code = argv[2]
    ready = [{"modelName": MODEL, "workers": [{"id": "9000", "status": "READY"}]}]
    loading = [{"modelName": MODEL, "workers": [{"id": "9000", "status": "UNLOADING"}]}]
    for answer, expected in ((ready, 0), (loading, 1), ([{"modelName": MODEL, "workers": []}], 1)):
        assert _run_probe(code, answer) == expected


def _run_probe(code: str, answer: list[dict[str, Any]]) -> int:
    import io
    import json
    import urllib.request
    from unittest import mock

    with mock.patch.object(urllib.request, "urlopen", return_value=io.BytesIO(json.dumps(answer).encode())):
        try:
            exec(compile(code, "readinessProbe", "exec"), {})
        except SystemExit as exit_:
            return int(exit_.code or 0)
    return 0


@pytest.mark.parametrize("server", SERVERS)
def test_servers_have_liveness_and_patient_startup_probes(
    stack_docs: list[dict[str, Any]], server: str
) -> None:
    spec = container(stack_docs, server, server)
    assert spec["livenessProbe"]
    startup = spec["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # a large model loads slowly


# --- Locust ---------------------------------------------------------------------------------------


def _loadtest_imports(module: str) -> set[str]:
    """loadtest modules that loadtest/<module> imports, at module level or inside functions."""
    tree = ast.parse((ROOT / "loadtest" / module).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found |= {alias.name for alias in node.names}
            elif node.module and node.module.startswith("loadtest."):
                found.add(node.module.split(".")[1])
            elif node.module == "loadtest":
                found |= {alias.name for alias in node.names if alias.name.startswith("_")}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("loadtest.")}
    return {f"{name}.py" for name in found if (ROOT / "loadtest" / f"{name}.py").is_file()}


def _locust_needs() -> set[str]:
    """Every loadtest file `locust -f loadtest/locustfile.py` can import (the package's __init__ first)."""
    needed, todo = set(), ["__init__.py", "locustfile.py"]
    while todo:
        module = todo.pop()
        if module not in needed:
            needed.add(module)
            todo += sorted(_loadtest_imports(module))
    return needed


def test_locust_configmap_holds_the_current_loadtest_modules(stack_docs: list[dict[str, Any]]) -> None:
    """Generated from loadtest/ at build time: every module the users import, byte for byte."""
    data = find(stack_docs, "ConfigMap", "loadtest")["data"]
    missing = _locust_needs() - set(data)
    assert not missing, (
        f"add {sorted(missing)} to the `loadtest` list in deploy/kubernetes/kustomization.yaml"
    )
    for name, text in data.items():
        assert text == (ROOT / "loadtest" / name).read_text()
    assert sum(len(text.encode()) for text in data.values()) < 1_000_000  # a ConfigMap holds at most 1 MiB


def test_locust_mounts_the_current_formats_package_beside_loadtest(stack_docs: list[dict[str, Any]]) -> None:
    """loadtest/ writes its records with the leaf package `inferload_formats`: its ConfigMap holds every
    module of it, byte for byte, mounted where `import inferload_formats` finds it (next to loadtest)."""
    data = find(stack_docs, "ConfigMap", "inferload-formats")["data"]
    modules = {path.name for path in (ROOT / "inferload_formats").glob("*.py")}
    assert set(data) == modules, "list every inferload_formats/*.py in deploy/kubernetes/kustomization.yaml"
    for name, text in data.items():
        assert text == (ROOT / "inferload_formats" / name).read_text()
    for deployment in ("locust-master", "locust-worker"):
        pod = pod_spec(find(stack_docs, "Deployment", deployment))
        volume = next(v["name"] for v in pod["volumes"]
                      if v.get("configMap", {}).get("name") == "inferload-formats")
        mounts = {m["name"]: m["mountPath"] for m in container(stack_docs, deployment)["volumeMounts"]}
        path = Path(mounts[volume])
        assert path.name == "inferload_formats"
        python_path = _env(container(stack_docs, deployment))["PYTHONPATH"]["value"]
        assert str(path.parent) == python_path.split(":")[0]


def test_the_import_walk_sees_the_package_structure() -> None:
    """Guards the test above: the walk follows relative and absolute imports."""
    needs = _locust_needs()
    assert {"__init__.py", "locustfile.py", "_engine.py", "_transports.py", "_payloads.py"} <= needs
    assert all((ROOT / "loadtest" / name).is_file() for name in needs)


def test_kustomization_lists_loadtest_modules_only() -> None:
    generators = {g["name"]: g for g in load_kustomization(KUBERNETES)["configMapGenerator"]}
    for name, folder in (("loadtest", "loadtest"), ("inferload-formats", "inferload_formats")):
        for entry in generators[name]["files"]:
            path = (KUBERNETES / entry).resolve()
            assert path.parent == ROOT / folder and path.suffix == ".py", entry


@pytest.mark.parametrize("deployment", ["locust-master", "locust-worker"])
def test_locust_runs_our_locustfile_from_the_configmap(
    stack_docs: list[dict[str, Any]], deployment: str
) -> None:
    pod = pod_spec(find(stack_docs, "Deployment", deployment))
    locust = container(stack_docs, deployment)
    mounts = {m["name"]: m["mountPath"] for m in locust["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    loadtest_volume = next(
        name for name, v in volumes.items() if v.get("configMap", {}).get("name") == "loadtest"
    )
    package_dir = mounts[loadtest_volume]
    assert f"--locustfile={package_dir}/locustfile.py" in locust["args"]
    # `from loadtest._engine import ...` needs the mount's parent on the import path
    assert _env(locust)["PYTHONPATH"]["value"].split(":")[0] == str(Path(package_dir).parent)
    assert Path(package_dir).name == "loadtest"


def test_workers_find_the_master_and_the_servers_by_service_name(stack_docs: list[dict[str, Any]]) -> None:
    worker = container(stack_docs, "locust-worker")
    assert "--worker" in worker["args"]
    master = find(stack_docs, "Service", "locust-master")
    assert f"--master-host={master['metadata']['name']}" in worker["args"]
    assert f"--master-port={SERVICE_PORTS['locust-master']['master']}" in worker["args"]
    env = _env(worker)
    for server in SERVERS:
        host = env[f"INFERLOAD_{server.upper()}_HOST"]["value"]
        assert find(stack_docs, "Service", host)["metadata"]["name"] == server


def test_master_waits_for_every_worker(stack_docs: list[dict[str, Any]]) -> None:
    parameters = find(stack_docs, "ConfigMap", "load-parameters")["data"]
    replicas = find(stack_docs, "Deployment", "locust-worker")["spec"]["replicas"]
    assert int(parameters["LOCUST_WORKERS"]) == replicas, "keep LOCUST_WORKERS = locust-worker replicas"
    assert "--expect-workers=$(LOCUST_WORKERS)" in container(stack_docs, "locust-master")["args"]


def test_load_parameters_drive_the_master(stack_docs: list[dict[str, Any]]) -> None:
    args = container(stack_docs, "locust-master")["args"]
    for option, variable in {
        "--rate": "TARGET_RATE",
        "--features": "FEATURES",
        "--run-time": "RUN_TIME",
        "--users": "LOCUST_USERS",
        "--model-name": "MODEL_NAME",
    }.items():
        assert f"{option}=$({variable})" in args
    assert args[-1] == "$(USER_CLASS)"
    assert "--autostart" in args and "--master" in args


def test_load_parameters_are_sane(stack_docs: list[dict[str, Any]]) -> None:
    parameters = find(stack_docs, "ConfigMap", "load-parameters")["data"]
    assert float(parameters["TARGET_RATE"]) > 0
    assert parameters["MODE"] in ("open", "closed")
    assert int(parameters["FEATURES"]) >= 0 and int(parameters["BATCH"]) >= 1  # 0: ask the server
    assert re.fullmatch(r"\d+[smh]", parameters["RUN_TIME"])
    assert parameters["USER_CLASS"] in _user_classes()


def _user_classes() -> set[str]:
    """The locustfile's concrete user classes, from the table they are generated from (importing it
    would patch gevent)."""
    text = (ROOT / "loadtest" / "_locust_users.py").read_text()
    servers = dict(re.findall(r'"(tfserving|torchserve|triton)": "(\w+)"', text))
    protocols = dict(re.findall(r'"(rest-json|rest-binary|grpc)": "(\w+)"', text))
    if servers and protocols:
        return {s + p for s in servers.values() for p in protocols.values()}
    return set(re.findall(r"^class (\w+)\(InferenceUser\):", text, re.MULTILINE))


# --- every $(VAR) is defined -----------------------------------------------------------------------


def _defined_variables(docs: list[dict[str, Any]], spec: dict[str, Any]) -> set[str]:
    names = set(_env(spec))
    for source in spec.get("envFrom", []):
        config_map = source.get("configMapRef", {}).get("name")
        if config_map:
            names |= set(find(docs, "ConfigMap", config_map)["data"])
    return names


@pytest.mark.parametrize("which", ["stack", "inferload-job"])
def test_every_variable_reference_is_defined(which: str) -> None:
    docs = render(KUBERNETES if which == "stack" else KUBERNETES / "inferload-job")
    checked = 0
    for doc in docs:
        spec = pod_spec(doc)
        for c in (spec or {}).get("initContainers", []) + (spec or {}).get("containers", []):
            defined = _defined_variables(docs, c)
            for text in c.get("command", []) + c.get("args", []):
                for name in VAR_REFERENCE.findall(text):
                    assert name in defined, f"{doc['metadata']['name']}/{c['name']}: $({name}) is not defined"
                    checked += 1
    assert checked > 0 or which == "inferload-job"


@pytest.mark.parametrize("which", ["stack", "inferload-job"])
def test_every_referenced_configmap_and_key_exists(which: str) -> None:
    docs = render(KUBERNETES if which == "stack" else KUBERNETES / "inferload-job")
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    referenced = 0
    for doc in docs:
        spec = pod_spec(doc) or {}
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps
                referenced += 1
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps
                referenced += 1
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in maps[ref["name"]], f"{ref['name']} has no key {ref['key']}"
                    referenced += 1
    assert referenced > 0
