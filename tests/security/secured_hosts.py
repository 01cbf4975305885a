"""Helpers of the secured "server host" (fixtures in conftest.py): a network namespace running
TorchServe with HTTPS, gRPC TLS and token authorization, and TF Serving (tfs-compat) with gRPC over
mutual TLS, each started the way a user starts them (`inferload serve up --bind <address> ...`), plus
real nginx fronts with TLS in front of TF Serving's REST API, started inside the namespace. The
certificates are made for the test with the `cryptography` package (serving/certs.py); nothing secret
is committed. One host per session; everything is stopped and removed afterwards, also on failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from netns import NetnsHost

from serving.certs import CertificateFiles, TlsMaterial

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 400


def inferload_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "inferload", *args]


def run_inferload(*args: str, timeout: float = 120, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, from the root namespace (the load host)."""
    return subprocess.run(inferload_argv(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)


@dataclass(frozen=True)
class Front:
    """A real nginx in the namespace terminating TLS in front of TF Serving's REST API."""

    rest_port: int
    grpc_port: int


@dataclass(frozen=True)
class SecuredHost:
    host: NetnsHost
    bearer: str  # what the "token" front wants
    tls: TlsMaterial  # CA, server certificate for the namespace address, client certificate
    torchserve: dict[str, int]  # ports
    tfserving: dict[str, int]
    key_file: Path  # TorchServe's key_file.json
    fronts: dict[str, Front]  # "tls", "mutual", "expired", "token"

    @property
    def address(self) -> str:
        return self.host.address

    def keys(self) -> dict[str, str]:
        """TorchServe's current keys (read fresh: its token API can rotate them)."""
        document = json.loads(self.key_file.read_text())
        return {api: document[api]["key"] for api in ("inference", "management", "API")}


def _serve_up(host: NetnsHost, state: Path, artifacts: Path, *flags: str) -> subprocess.Popen[str]:
    return host.popen(
        inferload_argv("serve", "up", "--artifacts", str(artifacts), "--bind", host.address, "--free-ports",
                       "--cpus", "all", "--state-dir", str(state), "--timeout", str(START_TIMEOUT_S - 60),
                       *flags),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _nginx_front(host: NetnsHost, prefix: Path, rest_upstream: int, grpc_upstream: int,
                 cert: CertificateFiles, client_ca: Path | None, bearer: str | None = None
                 ) -> tuple[Front, subprocess.Popen[bytes]]:
    """nginx in the namespace with TLS in front of TF Serving's REST API; `bearer`: it answers 401 to
    any request without `Authorization: Bearer <bearer>` (a token-protected ingress)."""
    from serving.balancer import BalancerSettings, BalancerTls, Upstream, nginx_binary, write_config
    from serving.ports import Ports

    free = Ports.free()  # two free numbers; bound inside the namespace, where nothing else listens
    front = Front(free.tfserving_rest, free.tfserving_grpc)
    settings = BalancerSettings(
        rest_port=front.rest_port, grpc_port=front.grpc_port, listen_host=host.address,
        rest_upstreams=(Upstream(host.address, rest_upstream),),
        grpc_upstreams=(Upstream(host.address, grpc_upstream),),
        tls=BalancerTls(str(cert.cert), str(cert.key), str(client_ca) if client_ca else None),
    )
    for sub in ("temp/body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi", "cache"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    config = write_config(settings, prefix)
    if bearer is not None:
        text = config.read_text()
        guard = f'            if ($http_authorization != "Bearer {bearer}") {{ return 401; }}\n'
        config.write_text(text.replace("            proxy_pass http://inferload_rest;\n",
                                       guard + "            proxy_pass http://inferload_rest;\n", 1))
    argv = [nginx_binary(), "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
    process = host.popen(argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return front, process


def _wait_port(host: NetnsHost, port: int, timeout_s: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
