"""Ports for tests that build a server's command line or config file and start nothing: numbers that
are easy to find in what was built."""

from __future__ import annotations

from serving.ports import Ports

FIXED_PORTS = Ports(
    tfserving_grpc=1000,
    tfserving_rest=1001,
    torchserve_inference=2000,
    torchserve_management=2001,
    torchserve_metrics=2002,
    torchserve_grpc=2003,
    torchserve_grpc_management=2004,
)
