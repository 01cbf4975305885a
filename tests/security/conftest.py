"""Fixtures: one secured "server host" per session (tests/security/secured_hosts.py says what runs there)."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from capabilities import need
from netns import default_prefix, netns_host
from secured_hosts import (
    REPO,
    START_TIMEOUT_S,
    SecuredHost,
    _nginx_front,
    _serve_up,
    _wait_port,
    inferload_argv,
)

from serving.certs import issue, make_ca, make_tls_material


@pytest.fixture(scope="session")
def secured_host(small_artifacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredHost]:
    need("netns")
    need("nginx")
    root = tmp_path_factory.mktemp("secured")
    with netns_host(f"{default_prefix()}s") as host:
        tls = make_tls_material(root / "tls", names=(host.address, "secured.test"))
        ts_state, tf_state = root / "torchserve", root / "tfserving"
        common = ("--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key),
                  "--tls-ca", str(tls.ca.cert))
        starts = [
            _serve_up(host, ts_state, small_artifacts.root, "--servers", "torchserve", *common,
                      "--torchserve-token-auth"),
            _serve_up(host, tf_state, small_artifacts.root, "--servers", "tfserving", *common,
                      "--mutual-tls"),
        ]
        nginx: list[subprocess.Popen[bytes]] = []
        try:
            for start in starts:
                output, _ = start.communicate(timeout=START_TIMEOUT_S)
                assert start.returncode == 0, f"serve up in the namespace failed:\n{output}"
            torchserve = json.loads((ts_state / "servers.json").read_text())["ports"]
            tfserving = json.loads((tf_state / "servers.json").read_text())["ports"]
            expired = issue(tls.ca, root / "tls", "expired", names=(host.address,), expired=True)
            fronts = {}
            bearer = secrets.token_urlsafe(16)
            for name, cert, client_ca in (("tls", tls.server, None), ("mutual", tls.server, tls.ca.cert),
                                          ("expired", expired, None), ("token", tls.server, None)):
                front, process = _nginx_front(host, root / f"nginx-{name}", tfserving["tfserving_rest"],
                                              tfserving["tfserving_grpc"], cert, client_ca,
                                              bearer if name == "token" else None)
                nginx.append(process)
                fronts[name] = front
                _wait_port(host, front.rest_port)
            yield SecuredHost(host=host, bearer=bearer, tls=tls, torchserve=torchserve, tfserving=tfserving,
                              key_file=ts_state / "torchserve" / "key_file.json", fronts=fronts)
        finally:
            for process in nginx:
                process.terminate()
            for state in (ts_state, tf_state):
                host.run(inferload_argv("serve", "down", "--state-dir", str(state)), cwd=REPO,
                         capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the servers use: trusting it alone is an unknown-CA failure."""
    return make_ca(tmp_path_factory.mktemp("other-ca"), name="some other CA").cert
