"""The servers running on the namespace host, and the CLI as a user runs it from the load host."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from netns import NetnsHost

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RemoteServers:
    """The servers of the small model running inside the namespace host, bound to its address."""

    host: NetnsHost
    state_dir: Path
    ports: dict[str, int]
    pids: dict[str, int]
    tfserving_kind: str

    @property
    def address(self) -> str:
        return self.host.address

    def port(self, server: str, protocol: str) -> int:
        if server == "triton":
            return self.ports["triton_grpc" if protocol == "grpc" else "triton_http"]
        if server == "tfserving":
            return self.ports["tfserving_grpc" if protocol == "grpc" else "tfserving_rest"]
        return self.ports["torchserve_grpc" if protocol == "grpc" else "torchserve_inference"]

    def metadata_url(self, server: str) -> str:
        port = self.ports[{"tfserving": "tfserving_rest", "torchserve": "torchserve_management",
                           "triton": "triton_http"}[server]]
        return f"http://{self.address}:{port}"


def inferload_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "inferload", *args]


def run_inferload(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, from the root namespace (the "load host")."""
    return subprocess.run(inferload_argv(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)
