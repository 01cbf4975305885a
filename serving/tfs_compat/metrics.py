"""Request counts and latencies for `GET /monitoring/prometheus/metrics`, named like TF Serving's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """One registry per server, so tests can run several servers in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            ":tensorflow:serving:request_count",
            "Requests by model, API, entry point (REST/GRPC) and status code name.",
            ["model_name", "API", "entrypoint", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Request latency in seconds, from request bytes received to response bytes ready.",
            ["model_name", "API", "entrypoint"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )

        self._batch_sizes = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Instances per merged batch run by server-side batching (after padding).",
            ["model_name"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )

    def observe_batch(self, model_name: str, size: int) -> None:
        self._batch_sizes.labels(model_name).observe(size)

    def observe(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        self._requests.labels(model_name, api, entrypoint, status).inc()
        self._latency.labels(model_name, api, entrypoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
