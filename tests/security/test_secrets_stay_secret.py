"""No secret in any output of a real authenticated run: every file of the run directory (records,
headers, load.json, manifest, cell files, logs, the report), the console output of `inferload run` and
`inferload report`, and the process titles seen while it ran. Credentials are recorded as present and
by fingerprint only.

The run is a matrix against the secured namespace host: TorchServe over HTTPS/gRPC TLS with its key
file and an extra header from the environment; TF Serving through nginx's TLS (REST) and gRPC over
mutual TLS with a bearer token from a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from secured_hosts import REPO, SecuredHost, inferload_argv, run_inferload

pytestmark = [pytest.mark.servers, pytest.mark.slow]

HEADER_SECRET = "hdr-5ecret-7f3a9c2e41b8"
TOKEN_SECRET = "tok-5ecret-0d6e8b1f93a7"


def _matrix(h: SecuredHost, token_file: Path) -> str:
    ts, tf = h.torchserve, h.tfserving
    a = h.address
    return f"""
name: secured
model: {{classes: 64, features: 1024, seed: 0}}
servers: [torchserve, tfserving]
protocols: [rest-json, grpc]
load: {{mode: open, rates: [20]}}
batch_sizes: [1]
warmup_s: 0.5
duration_s: 2
calibration: {{enabled: false}}   # drift checks are tested in tests/experiments/test_drift_is_measured.py;
server_warmup: {{enabled: false}} # here they would only add their seconds
cpus: {{servers: all, load: all}}
target:
  kind: external
  servers:
    torchserve:
      rest: https://{a}:{ts['torchserve_inference']}
      grpc: grpcs://{a}:{ts['torchserve_grpc']}
      management: https://{a}:{ts['torchserve_management']}
      metrics: http://{a}:{ts['torchserve_metrics']}/metrics
      security:
        ca_cert: {h.tls.ca_cert}
        torchserve_key_file: {h.key_file}
        headers: [{{name: X-Inferload-Test, value: {{env: INFERLOAD_TEST_HEADER}}}}]
    tfserving:
      rest: https://{a}:{h.fronts['tls'].rest_port}
      grpc: grpcs://{a}:{tf['tfserving_grpc']}
      kind: tfs-compat
      security:
        ca_cert: {h.tls.ca_cert}
        client_cert: {h.tls.client.cert}
        client_key: {h.tls.client.key}
        token: {{file: {token_file}}}
"""


def _watch_process_titles(stop: threading.Event, seen: list[str]) -> None:
    while not stop.wait(0.1):
        listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
        seen.extend(line for line in listing.splitlines() if "inferload" in line or "loadtest" in line)


def test_no_secret_reaches_any_output_of_an_authenticated_run(
    secured_host: SecuredHost, tmp_path: Path
) -> None:
    h = secured_host
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN_SECRET + "\n")
    matrix = tmp_path / "secured.yaml"
    matrix.write_text(_matrix(h, token_file))
    out = tmp_path / "results"
    env = {**os.environ, "INFERLOAD_TEST_HEADER": HEADER_SECRET}
    secrets = {"header": HEADER_SECRET, "token": TOKEN_SECRET, **h.keys()}

    titles: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_process_titles, args=(stop, titles), daemon=True)
    watcher.start()
    try:
        run = subprocess.run(inferload_argv("run", str(matrix), "--out", str(out), "--no-floor"), cwd=REPO,
                             capture_output=True, text=True, timeout=400, env=env)
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.stdout + run.stderr
    report = run_inferload("report", str(out), env=env)
    assert report.returncode == 0, report.stdout + report.stderr

    cells = sorted((out / "cells").iterdir())
    assert len(cells) == 4
    for cell in cells:  # every cell really ran, authenticated: no refusal, every request answered
        summary = json.loads((cell / "load.json").read_text())
        assert summary["counts"]["ok"] > 20 and summary["counts"]["error"] == 0, cell.name
    assert any("loadtest._worker" in title for title in titles), "the watcher saw the load processes"

    outputs = {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    outputs |= {"run stdout": run.stdout.encode(), "run stderr": run.stderr.encode(),
                "report stdout": report.stdout.encode(), "report stderr": report.stderr.encode(),
                "process titles": "\n".join(titles).encode()}
    assert any(name.endswith(".jsonl") and name.startswith("cells/") for name in outputs)
    assert "report.html" in outputs and "manifest.json" in outputs
    leaks = [(what, name) for name, data in outputs.items() for what, secret in secrets.items()
             if secret.encode() in data]
    assert leaks == []

    # what the results do say: present, and by fingerprint
    cell = json.loads((cells[0] / "cell.json").read_text())
    described = json.dumps(cell)
    assert '"present": true' in described and "sha256:" in described
