"""Small helpers shared by the topology tests: send bounded requests and read per-replica counts."""

from __future__ import annotations

import itertools
import urllib.request
from dataclasses import replace

import numpy as np

from loadtest import encode_body, make_inputs
from loadtest._payloads import CONTENT_TYPES
from loadtest._spec import grpc_method, rest_path
from loadtest._transports import GrpcTransport, HttpTransport, Outcome
from serving import balancer as nginx
from serving.metrics_file import parse_series_key
from serving.prometheus import metrics_url, scrape_series
from serving.replicas import ReplicatedServers
from serving.stack import Stack

FEATURES = 1024


def bodies(server: str, protocol: str, count: int, seed: int = 3) -> list[bytes]:
    return [encode_body(server, protocol, x) for x in make_inputs(FEATURES, 1, count, seed)]


def send(server: str, protocol: str, port: int, payloads: list[bytes]) -> list[Outcome]:
    """One request per body, one after another, through the load generator's own transports."""
    if protocol == "grpc":
        transport = GrpcTransport("127.0.0.1", port, grpc_method(server), timeout_s=60)
    else:
        transport = HttpTransport("127.0.0.1", port, rest_path(server, "linear"),
                                  CONTENT_TYPES[(server, protocol)], timeout_s=60, pool=4)
    try:
        return [transport.send(body) for body in payloads]
    finally:
        transport.close()


def predict_count(stack: Stack, server: str) -> float:
    """Predict requests one replica counted itself, from its Prometheus metrics."""
    info = stack.servers[server]
    series, error = scrape_series(metrics_url(server, info.ports), timeout_s=10)
    assert error is None, error
    name = {"tfserving": ":tensorflow:serving:request_latency_count",
            "torchserve": "ts_inference_requests_total"}[server]
    return sum(value for key, value in series.items() if parse_series_key(key)[0] == name)


_prefixes = itertools.count(1)


def front(servers: ReplicatedServers, *, policy: nginx.Policy = "round_robin",
          cache: nginx.CacheSettings | None = None) -> nginx.Balancer:
    """The same replicas behind a fresh nginx (new prefix: empty cache, empty access log) with `policy`
    and `cache`, on the same front ports (nginx starts in milliseconds; the servers do not)."""
    assert servers.balancer is not None
    old = servers.balancer
    old.stop()
    settings = replace(old.settings, policy=policy, cache=cache)
    servers.balancer = nginx.start(settings, old.prefix.parent / f"nginx-{next(_prefixes)}")
    return servers.balancer


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


__all__ = ["bodies", "send", "predict_count", "front", "get", "np"]
