"""An external target's server endpoints as a matrix names them (`target.servers`, YAML), from the ports
`inferload serve up --free-ports` chose: one spelling for every test and benchmark that aims a matrix
at servers it did not start."""

from __future__ import annotations

from collections.abc import Mapping


def torchserve_endpoints(host: str, ports: Mapping[str, int]) -> str:
    """`target.servers.torchserve`: TorchServe's inference, gRPC, management and metrics ports on `host`,
    as YAML lines indented for a matrix's `target: servers:` block (each line ends with a newline)."""
    return (f"    torchserve:\n"
            f"      rest: http://{host}:{ports['torchserve_inference']}\n"
            f"      grpc: {host}:{ports['torchserve_grpc']}\n"
            f"      management: http://{host}:{ports['torchserve_management']}\n"
            f"      metrics: http://{host}:{ports['torchserve_metrics']}/metrics\n")
