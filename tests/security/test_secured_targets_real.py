"""Real secured servers in a namespace host, measured from the root namespace with `inferload load`:
TorchServe with token authorization over HTTPS and gRPC TLS (its own key file), TF Serving (tfs-compat)
gRPC over mutual TLS, and nginx terminating TLS (and mutual TLS) in front of TF Serving's REST API.
Each run must finish with every request answered ok, and its records must say how it was secured
without saying any secret."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from secured_hosts import REPO, SecuredHost, run_inferload

from loadtest import read_run

pytestmark = [pytest.mark.servers, pytest.mark.slow]

LOAD = ("--rate", "30", "--duration", "2", "--features", "1024", "--quiet", "--cpus", "all",
        "--lateness-limit-ms", "10000")  # about security, not timing: a busy machine is fine


def _load(out: Path, *args: str) -> dict:
    done = run_inferload("load", *args, *LOAD, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "load.json").read_text())
    records = read_run(out).records
    assert len(records) > 20
    assert set(records["status"]) == {"ok"}, set(records["error"])
    return summary


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_torchserve_with_token_auth_over_tls(
    secured_host: SecuredHost, tmp_path: Path, protocol: str
) -> None:
    h = secured_host
    port = h.torchserve["torchserve_grpc" if protocol == "grpc" else "torchserve_inference"]
    scheme = "grpcs" if protocol == "grpc" else "https"
    _load(tmp_path, "--server", "torchserve", "--protocol", protocol, "--host", f"{scheme}://{h.address}:{port}",
          "--ca-cert", str(h.tls.ca_cert), "--torchserve-key-file", str(h.key_file),
          "--metadata-url", f"https://{h.address}:{h.torchserve['torchserve_management']}")

    header = read_run(tmp_path).header
    security = header.settings["security"]
    assert security["tls"] is True and security["ca_cert"] == str(h.tls.ca_cert)
    described = {entry["from"].split(" key")[0]: entry for entry in security["credentials"]}
    assert described["inference"]["present"] is True
    assert described["inference"]["fingerprint"].startswith("sha256:")
    key = h.keys()["inference"]
    assert key not in json.dumps(header.to_dict())
    assert not [path.name for path in tmp_path.rglob("*")
                if path.is_file() and key.encode() in path.read_bytes()]


def test_tfs_compat_grpc_over_mutual_tls(secured_host: SecuredHost, tmp_path: Path) -> None:
    h = secured_host
    _load(tmp_path, "--server", "tfserving", "--protocol", "grpc",
          "--host", f"grpcs://{h.address}:{h.tfserving['tfserving_grpc']}",
          "--metadata-url", f"http://{h.address}:{h.tfserving['tfserving_rest']}",
          "--ca-cert", str(h.tls.ca_cert), "--client-cert", str(h.tls.client.cert),
          "--client-key", str(h.tls.client.key))


@pytest.mark.parametrize("front", ["tls", "mutual"])
def test_nginx_terminating_tls_in_front_of_rest(
    secured_host: SecuredHost, tmp_path: Path, front: str
) -> None:
    h = secured_host
    client = ("--client-cert", str(h.tls.client.cert), "--client-key", str(h.tls.client.key)) \
        if front == "mutual" else ()
    _load(tmp_path, "--server", "tfserving", "--protocol", "rest-binary",
          "--host", f"https://{h.address}:{h.fronts[front].rest_port}", "--ca-cert", str(h.tls.ca_cert),
          *client)


def test_a_bearer_token_from_a_file_passes_a_token_protected_ingress(
    secured_host: SecuredHost, tmp_path: Path
) -> None:
    h = secured_host
    token = tmp_path / "token"
    token.write_text(h.bearer + "\n")
    _load(tmp_path / "run", "--server", "tfserving", "--protocol", "rest-json",
          "--host", f"https://{h.address}:{h.fronts['token'].rest_port}", "--ca-cert", str(h.tls.ca_cert),
          "--token", f"file:{token}")


def test_the_server_name_override_verifies_another_name(secured_host: SecuredHost, tmp_path: Path) -> None:
    """The certificate also names secured.test: connecting by address but verifying that name works."""
    h = secured_host
    _load(tmp_path, "--server", "tfserving", "--protocol", "rest-json",
          "--host", f"https://{h.address}:{h.fronts['tls'].rest_port}", "--ca-cert", str(h.tls.ca_cert),
          "--server-name", "secured.test")


@pytest.mark.parametrize("user_class", ["TorchServeGrpc", "TorchServeRestBinary"])
def test_locust_users_over_tls_with_the_key_file(
    secured_host: SecuredHost, tmp_path: Path, user_class: str
) -> None:
    """The Locust path (fully gevent-patched: blocking grpcio, geventhttpclient) takes the same options."""
    h = secured_host
    grpc = user_class.endswith("Grpc")
    port = h.torchserve["torchserve_grpc" if grpc else "torchserve_inference"]
    host = f"{'grpcs' if grpc else 'https'}://{h.address}:{port}"
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless", "-u", "1", "-r", "1",
         "-t", "3s", "--rate", "20", "--host", host, "--ca-cert", str(h.tls.ca_cert),
         "--torchserve-key-file", str(h.key_file), "--features", "1024",
         "--metadata-url", f"https://{h.address}:{h.torchserve['torchserve_management']}",
         "--records-dir", str(tmp_path), user_class],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = read_run(tmp_path).records
    assert len(records) > 20 and set(records["status"]) == {"ok"}, set(records["error"])
