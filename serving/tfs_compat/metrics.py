"""`GET /monitoring/prometheus/metrics`: the families TF Serving exports, with its names, labels and units.

As in TF Serving (servables/tensorflow/util.cc, batching/batching_session.cc, model_servers/*):
- `:tensorflow:serving:request_count{model_name, status}`: every predict request, by status code name;
- `:tensorflow:serving:request_latency{model_name, API, entrypoint}`: microseconds from the request
  reaching the front end (REST: body not yet read; gRPC: request decoded) to the response being ready,
  successful requests only; API is `predict` over REST and `Predict` over gRPC, entrypoint REST/GRPC;
- `:tensorflow:serving:runtime_latency{model_name, API, runtime}`: microseconds of the session run.
  With batching the run goes through the batching queue, so this includes the queueing time;
- `:tensorflow:serving:batching_session:queuing_latency{thread_pool_name}`: microseconds each request
  waited in the batching queue before its batch started (batching only).
Histograms use TF Serving's buckets (exponential: 10 us x 1.8^i, 33 buckets; queuing: 100 us x 1.2^i).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]

RUNTIME = "TF1"  # what TF Serving labels a SavedModel session run with
BATCH_THREAD_POOL = "batch_threads"  # BasicBatchScheduler's default thread_pool_name


def _exponential(scale: float, growth: float, count: int) -> tuple[float, ...]:
    return tuple(scale * growth**i for i in range(count))


_LATENCY_BUCKETS_US = _exponential(10, 1.8, 33)
_QUEUING_BUCKETS_US = _exponential(100, 1.2, 52)


class Metrics:
    """One registry per server, so tests can run several servers in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._runtime = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"],
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._queuing = Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"],
            buckets=_QUEUING_BUCKETS_US,
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

    def observe_queuing(self, seconds: float) -> None:
        self._queuing.labels(BATCH_THREAD_POOL).observe(seconds * 1e6)

    def observe_runtime(self, model_name: str, seconds: float) -> None:
        self._runtime.labels(model_name, "Predict", RUNTIME).observe(seconds * 1e6)

    def observe(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """One finished request; TF Serving records its latency only when it succeeded."""
        self._requests.labels(model_name, status).inc()
        if status == "OK":
            self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def render(self) -> bytes:
        return generate_latest(self.registry)
