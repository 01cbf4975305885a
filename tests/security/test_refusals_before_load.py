"""Every way a secured target can be got wrong ends before the load, with the host and the reason named,
and nothing written: unknown CA, wrong name, expired certificate, plaintext to a TLS port and TLS to a
plaintext one, a missing client certificate, a wrong or missing token. A token that stops working
mid-run stops the run (fail-fast), keeping the records sent until then."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from secured_hosts import REPO, SecuredHost, inferload_argv, run_inferload

from loadtest import read_run

pytestmark = [pytest.mark.servers, pytest.mark.slow]

LOAD = ("--rate", "20", "--duration", "2", "--features", "1024", "--quiet", "--cpus", "all",
        "--lateness-limit-ms", "10000")  # about security, not timing: a busy machine is fine


def _refused(out: Path, *args: str) -> str:
    done = run_inferload("load", *args, *LOAD, "--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    assert not out.exists(), "a refused target leaves no run directory"
    return done.stderr


def _torchserve(h: SecuredHost, protocol: str, scheme: str) -> tuple[str, ...]:
    port = h.torchserve["torchserve_grpc" if protocol == "grpc" else "torchserve_inference"]
    return ("--server", "torchserve", "--protocol", protocol, "--host", f"{scheme}://{h.address}:{port}",
            "--metadata-url", f"https://{h.address}:{h.torchserve['torchserve_management']}")


def test_an_unknown_ca_is_named(secured_host: SecuredHost, other_ca: Path, tmp_path: Path) -> None:
    message = _refused(tmp_path / "run", *_torchserve(secured_host, "rest-json", "https"),
                       "--ca-cert", str(other_ca), "--torchserve-key-file", str(secured_host.key_file))
    assert f"TLS verification of https://{secured_host.address}:" in message
    assert "unable to get local issuer certificate" in message and "unknown CA" in message


def test_a_wrong_name_is_named(secured_host: SecuredHost, tmp_path: Path) -> None:
    h = secured_host
    message = _refused(tmp_path / "run", "--server", "tfserving", "--protocol", "rest-json",
                       "--host", f"https://{h.address}:{h.fronts['tls'].rest_port}",
                       "--ca-cert", str(h.tls.ca_cert),
                       "--server-name", "not-this-server.test")
    assert f"TLS verification of https://{h.address}:{h.fronts['tls'].rest_port} failed" in message
    assert "Hostname mismatch" in message and "wrong name" in message


def test_an_expired_certificate_is_named(secured_host: SecuredHost, tmp_path: Path) -> None:
    h = secured_host
    message = _refused(tmp_path / "run", "--server", "tfserving", "--protocol", "rest-json",
                       "--host", f"https://{h.address}:{h.fronts['expired'].rest_port}",
                       "--ca-cert", str(h.tls.ca_cert))
    assert f"https://{h.address}:{h.fronts['expired'].rest_port}" in message
    assert "certificate has expired" in message


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_plaintext_to_a_tls_port_is_named(secured_host: SecuredHost, tmp_path: Path, protocol: str) -> None:
    scheme = "grpc" if protocol == "grpc" else "http"
    message = _refused(tmp_path / "run", *_torchserve(secured_host, protocol, scheme),
                       "--torchserve-key-file", str(secured_host.key_file))
    assert f"{scheme}://{secured_host.address}:" in message
    assert "speaks TLS, but the load would be plaintext" in message


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_tls_to_a_plaintext_port_is_named(secured_host: SecuredHost, tmp_path: Path, protocol: str) -> None:
    """TF Serving's REST API is plaintext (as the real binary's)."""
    h = secured_host
    port = h.tfserving["tfserving_rest"]
    scheme = "grpcs" if protocol == "grpc" else "https"
    message = _refused(tmp_path / "run", "--server", "tfserving", "--protocol", protocol,
                       "--host", f"{scheme}://{h.address}:{port}", "--ca-cert", str(h.tls.ca_cert),
                       "--metadata-url", f"http://{h.address}:{h.tfserving['tfserving_rest']}")
    assert f"{scheme}://{h.address}:{port} does not speak TLS" in message


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_missing_client_certificate_is_named(
    secured_host: SecuredHost, tmp_path: Path, protocol: str
) -> None:
    h = secured_host
    if protocol == "grpc":
        target = ("--host", f"grpcs://{h.address}:{h.tfserving['tfserving_grpc']}",
                  "--metadata-url", f"http://{h.address}:{h.tfserving['tfserving_rest']}")
    else:
        target = ("--host", f"https://{h.address}:{h.fronts['mutual'].rest_port}")
    message = _refused(tmp_path / "run", "--server", "tfserving", "--protocol", protocol, *target,
                       "--ca-cert", str(h.tls.ca_cert))
    assert "requires a client certificate (mutual TLS)" in message


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_a_wrong_token_is_refused_naming_the_refusal(secured_host: SecuredHost, tmp_path: Path,
                                                     protocol: str) -> None:
    h = secured_host
    forged = tmp_path / "key_file.json"
    forged.write_text(json.dumps({"inference": {"key": "forged-inference"},
                                  "management": {"key": "forged-management"}}))
    scheme = "grpcs" if protocol == "grpc" else "https"
    message = _refused(tmp_path / "run", *_torchserve(h, protocol, scheme),
                       "--ca-cert", str(h.tls.ca_cert), "--torchserve-key-file", str(forged))
    assert "refused" in message and f"{h.address}:" in message
    assert "HTTP 400" in message and "Token Authorization failed" in message  # TorchServe's own refusal
    assert "forged-inference" not in message and "forged-management" not in message
    assert "sha256:" in message  # which credentials were sent, by fingerprint


@pytest.mark.parametrize("token", ["a-wrong-bearer-token", None], ids=["wrong", "missing"])
def test_a_token_protected_ingress_refusal_names_the_401(secured_host: SecuredHost, tmp_path: Path,
                                                         token: str | None) -> None:
    h = secured_host
    given = ()
    if token is not None:
        (tmp_path / "token").write_text(token)
        given = ("--token", f"file:{tmp_path / 'token'}")
    message = _refused(tmp_path / "run", "--server", "tfserving", "--protocol", "rest-json",
                       "--host", f"https://{h.address}:{h.fronts['token'].rest_port}",
                       "--ca-cert", str(h.tls.ca_cert), *given)
    assert "HTTP 401" in message and f"{h.address}:{h.fronts['token'].rest_port}" in message
    assert ("refused our credentials" if token else "requires credentials") in message
    assert "a-wrong-bearer-token" not in message


def test_a_missing_token_is_refused_saying_what_to_give(secured_host: SecuredHost, tmp_path: Path) -> None:
    message = _refused(tmp_path / "run", *_torchserve(secured_host, "rest-json", "https"),
                       "--ca-cert", str(secured_host.tls.ca_cert))
    assert "requires credentials" in message and "--torchserve-key-file" in message


def test_a_key_rotated_mid_run_stops_the_run_and_keeps_its_records(secured_host: SecuredHost,
                                                                    tmp_path: Path) -> None:
    """TorchServe's token API replaces the inference key while the load runs with the old one."""
    h = secured_host
    out = tmp_path / "run"
    load = subprocess.Popen(
        inferload_argv("load", *_torchserve(h, "grpc", "grpcs"), "--ca-cert", str(h.tls.ca_cert),
                       "--torchserve-key-file", str(h.key_file), "--rate", "20", "--duration", "30",
                       "--features", "1024", "--quiet", "--cpus", "all", "--lateness-limit-ms", "10000",
                       "--out", str(out)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("requests.*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # some requests answered with the key the load started with
        import ssl

        api = urllib.request.Request(
            f"https://{h.address}:{h.torchserve['torchserve_management']}/token?type=inference",
            headers={"Authorization": f"Bearer {h.keys()['API']}"})
        with urllib.request.urlopen(api, timeout=10,
                                    context=ssl.create_default_context(cafile=str(h.tls.ca_cert))) as r:
            r.read()
        output, _ = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 1, output
    assert "refused our credentials mid-run" in output and "gRPC status 7" in output
    statuses = read_run(out).records["status"].value_counts().to_dict()
    assert statuses.get("ok", 0) > 10  # the records up to then are kept
    assert statuses.get("error", 0) >= 5  # the refusals that stopped it
    summary = json.loads((out / "load.json").read_text())
    assert summary["valid"] is False
