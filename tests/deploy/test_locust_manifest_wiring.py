"""The Locust Deployments' command lines, run for real on this machine: the `loadtest` ConfigMap
written out as the kubelet mounts it, the master's and workers' args with every `$(VAR)` expanded
from the rendered ConfigMaps as the kubelet expands them, a master and LOCUST_WORKERS workers.

Only what cannot exist here is changed: the Service names become 127.0.0.1, the fixed ports free
ones, the run time short, and `--autoquit 0 --csv` is added so the master ends and leaves its stats.
The servers' address is a closed port on loopback: every request fails, which is enough to show
that the workers started our users with the master's options and sent to the address the
manifests give them (no traffic leaves 127.0.0.1)."""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from k8s_render import ROOT, container, find

pytestmark = pytest.mark.slow

# `locust`, with the editable install's import hook removed: it would quietly supply any loadtest
# module the ConfigMap lacks from this checkout, which the cluster cannot do.
ONLY_THE_CONFIGMAP = (
    "import sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "from locust.main import main; sys.exit(main())"
)
VAR_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's expansion: $(NAME) from the container's environment, $$ is $, unknown stays."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return VAR_REFERENCE.sub(replace, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--rate=$(TARGET_RATE)", "--rate=50"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$$(TARGET_RATE)", "$(TARGET_RATE)"),
        ("$((waited + 5))", "$((waited + 5))"),
    ],
)
def test_expansion_follows_the_kubelet(text: str, expected: str) -> None:
    assert expand(text, {"TARGET_RATE": "50"}) == expected


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(docs: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in spec.get("env", []):
        env[entry["name"]] = expand(entry["value"], env)
    return env


def _command(
    docs: list[dict[str, Any]], deployment: str, overrides: dict[str, str]
) -> tuple[list[str], dict]:
    spec = container(docs, deployment)
    env = {**_environment(docs, spec), **overrides}
    return [expand(arg, env) for arg in spec["args"]], env


def test_master_and_workers_run_our_users_with_the_manifest_options(
    stack_docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    # The `loadtest` ConfigMap, where the Deployments mount it.
    master_spec = container(stack_docs, "locust-master")
    (mount,) = [m for m in master_spec["volumeMounts"] if m["name"] == "loadtest"]
    home = master_spec["workingDir"]
    package_dir = tmp_path / mount["mountPath"].lstrip("/")
    package_dir.mkdir(parents=True)
    for name, text in find(stack_docs, "ConfigMap", "loadtest")["data"].items():
        (package_dir / name).write_text(text)
    (formats_mount,) = [m for m in master_spec["volumeMounts"] if m["name"] == "inferload-formats"]
    formats_dir = tmp_path / formats_mount["mountPath"].lstrip("/")
    formats_dir.mkdir(parents=True)
    for name, text in find(stack_docs, "ConfigMap", "inferload-formats")["data"].items():
        (formats_dir / name).write_text(text)
    local_home = str(tmp_path / home.lstrip("/"))

    closed_port = _free_port()  # nothing listens there
    master_port, web_port = _free_port(), _free_port()
    overrides = {"RUN_TIME": "4s"}
    master_args, master_env = _command(stack_docs, "locust-master", overrides)
    workers = int(find(stack_docs, "ConfigMap", "load-parameters")["data"]["LOCUST_WORKERS"])
    assert workers == find(stack_docs, "Deployment", "locust-worker")["spec"]["replicas"]
    user_class = master_args[-1]
    server = "tfserving" if user_class.startswith("TFServing") else "torchserve"
    protocol_kind = "GRPC" if user_class.endswith("Grpc") else "REST"

    def process_env(env: dict[str, str]) -> dict[str, str]:
        local = {name: value.replace(home, local_home) for name, value in env.items()}
        local[f"INFERLOAD_{server.upper()}_HOST"] = "127.0.0.1"
        local[f"INFERLOAD_{server.upper()}_{protocol_kind}_PORT"] = str(closed_port)
        # the stubs package (baked into the image there) from the repository, after the ConfigMap
        return {**os.environ, **local, "PYTHONPATH": f"{local['PYTHONPATH']}{os.pathsep}{ROOT}"}

    locust = [sys.executable, "-c", ONLY_THE_CONFIGMAP]
    csv_prefix = tmp_path / "stats"
    master_cmd = [a.replace(home, local_home) for a in master_args[:-1]] + [
        "--master-bind-host=127.0.0.1",
        f"--master-bind-port={master_port}",
        "--web-host=127.0.0.1",
        f"--web-port={web_port}",
        "--autoquit=0",
        f"--csv={csv_prefix}",
        user_class,
    ]
    worker_args, worker_env = _command(stack_docs, "locust-worker", overrides)
    master_service = find(stack_docs, "Service", "locust-master")["metadata"]["name"]
    worker_cmd = [
        a.replace(home, local_home)
        .replace(f"--master-host={master_service}", "--master-host=127.0.0.1")
        .replace("--master-port=5557", f"--master-port={master_port}")
        for a in worker_args
    ]
    assert "--master-host=127.0.0.1" in worker_cmd and f"--master-port={master_port}" in worker_cmd

    logs = tmp_path / "logs"
    logs.mkdir()
    processes = []
    try:
        with open(logs / "master.log", "w") as log:
            master = subprocess.Popen(
                locust + master_cmd, cwd=local_home, env=process_env(master_env), stdout=log, stderr=log
            )
        processes.append(master)
        for index in range(workers):
            with open(logs / f"worker{index}.log", "w") as log:
                processes.append(
                    subprocess.Popen(
                        locust + worker_cmd,
                        cwd=local_home,
                        env=process_env(worker_env),
                        stdout=log,
                        stderr=log,
                    )
                )
        try:
            master.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the master did not finish: {(logs / 'master.log').read_text()[-3000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    master_log = (logs / "master.log").read_text()
    # --expect-workers: the run starts once every worker is in
    assert f"{workers} workers connected" in master_log, master_log[-3000:]

    stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(open(f"{csv_prefix}_stats.csv"))}
    protocol = {"Grpc": "grpc", "RestJson": "rest-json", "RestBinary": "rest-binary"}[
        re.sub(r"^(TFServing|TorchServe)", "", user_class)
    ]
    row = stats.get((protocol, server))
    assert row is not None, f"no {protocol} requests to {server}: {sorted(stats)}\n{master_log[-3000:]}"
    assert int(row["Request Count"]) > 0
    assert int(row["Failure Count"]) == int(row["Request Count"])  # nothing listens there
    failures = open(f"{csv_prefix}_failures.csv").read()
    assert str(closed_port) in failures or str(closed_port) in master_log, failures[-2000:]
