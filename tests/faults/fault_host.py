"""The namespace server host of the fault tests: TorchServe on it, and how load reaches it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from netns import NetnsHost

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 300


def inferload(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, from the root namespace (the load host)."""
    return subprocess.run([sys.executable, "-m", "inferload", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@dataclass(frozen=True)
class FaultHost:
    """TorchServe (small model) on a namespace host whose link the tests may damage."""

    host: NetnsHost
    ports: dict[str, int]
    features: int

    @property
    def address(self) -> str:
        return self.host.address

    def port(self, protocol: str) -> int:
        return self.ports["torchserve_grpc" if protocol == "grpc" else "torchserve_inference"]

    @property
    def management_url(self) -> str:
        return f"http://{self.address}:{self.ports['torchserve_management']}"

    def load_args(self, protocol: str, *, port: int | None = None) -> list[str]:
        """`inferload load` arguments aimed at TorchServe over `protocol` (at `port`: e.g. a proxy)."""
        return ["--server", "torchserve", "--protocol", protocol,
                "--host", f"{self.address}:{port or self.port(protocol)}",
                "--metadata-url", self.management_url, "--features", str(self.features)]
