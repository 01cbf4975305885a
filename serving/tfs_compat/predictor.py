"""The one predict path behind both front ends: validate, then run directly or through the batcher."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from serving.tfs_compat.batcher import Batcher
from serving.tfs_compat.batching_config import BatchingParameters
from serving.tfs_compat.metrics import Metrics
from serving.tfs_compat.model import LoadedModel, Signature

__all__ = ["Predictor"]

Outputs = dict[str, np.ndarray]


def _filtered(outputs: Outputs, output_filter: Sequence[str]) -> Outputs:
    return {name: outputs[name] for name in output_filter} if output_filter else outputs


class Predictor:
    """Runs checked requests in the caller's thread, as TF Serving does in its REST and gRPC pools.

    With batching the caller waits for its share of a merged batch, so the front ends' thread pools
    bound the number of requests in flight, like `--rest_api_num_threads` and gRPC's pool do.
    """

    def __init__(
        self, model: LoadedModel, batching: BatchingParameters | None, metrics: Metrics | None = None
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.batcher = Batcher(model, batching, metrics) if batching else None

    def check(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> None:
        self.model.validate(signature, inputs)
        self.model.check_output_filter(signature, output_filter)

    def predict(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> Outputs:
        """Run a checked request; TF releases the GIL, so callers in a thread pool run in parallel.

        The run is timed as TF Serving's runtime_latency: with batching, queue wait included.
        """
        started = time.perf_counter()
        if self.batcher is None:
            outputs = self.model.predict(signature, inputs, output_filter)
        else:
            outputs = _filtered(self.batcher.submit(signature, inputs).result(), output_filter)
        if self.metrics is not None:
            self.metrics.observe_runtime(self.model.name, time.perf_counter() - started)
        return outputs

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
