"""Server-side batching shared by REST and gRPC, modelled on TF Serving's BasicBatchScheduler.

Per signature, one thread forms batches: it takes the first waiting request, then adds requests
until the batch holds `max_batch_size` instances or `batch_timeout_micros` have passed since the first
arrived. Formed batches run on `num_batch_threads` threads; results are split back per request.
A request larger than max_batch_size is rejected with TF Serving's message.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import numpy as np

from serving.tfs_compat.batching_config import BatchingParameters
from serving.tfs_compat.errors import ServingError, invalid_argument
from serving.tfs_compat.metrics import Metrics
from serving.tfs_compat.model import LoadedModel, Signature

__all__ = ["Batcher"]

_log = logging.getLogger(__name__)
Outputs = dict[str, np.ndarray]


@dataclass
class _Task:
    inputs: Mapping[str, np.ndarray]
    size: int
    arrived: float = field(default_factory=time.monotonic)
    future: Future[Outputs] = field(default_factory=Future)


class _SignatureQueue:
    """Waiting requests for one signature and the thread that forms them into batches."""

    def __init__(self, batcher: Batcher, signature: Signature) -> None:
        self.batcher = batcher
        self.signature = signature
        self.tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._form_batches, name=f"batcher-{signature.name}", daemon=True
        )
        self.thread.start()

    def _form_batches(self) -> None:
        params = self.batcher.params
        timeout_s = params.batch_timeout_micros / 1e6
        carried: _Task | None = None
        while True:
            first = carried or self.tasks.get()
            carried = None
            if first is None:
                return
            batch, size = [first], first.size
            deadline = first.arrived + timeout_s
            while size < params.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    task = self.tasks.get(timeout=remaining) if remaining > 0 else self.tasks.get_nowait()
                except queue.Empty:
                    break
                if task is None:
                    self.tasks.put(None)
                    break
                if size + task.size > params.max_batch_size:
                    carried = task
                    break
                batch.append(task)
                size += task.size
            self.batcher.dispatch(self.signature, batch, size)


class Batcher:
    """Queues requests per signature and runs them as merged batches."""

    def __init__(
        self, model: LoadedModel, params: BatchingParameters, metrics: Metrics | None = None
    ) -> None:
        self.model = model
        self.params = params
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(params.num_batch_threads, thread_name_prefix="batch")
        self._queues: dict[str, _SignatureQueue] = {}
        self._lock = threading.Lock()
        self._pending_batches = 0

    def submit(self, signature: Signature, inputs: Mapping[str, np.ndarray]) -> Future[Outputs]:
        """Enqueue one validated request; the future gets all of the signature's outputs for it."""
        size = next(iter(inputs.values())).shape[0]
        if size > self.params.max_batch_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {self.params.max_batch_size}"
            )
        with self._lock:
            if self._pending_batches >= self.params.max_enqueued_batches:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full",
                )
            signature_queue = self._queues.get(signature.name)
            if signature_queue is None:
                signature_queue = self._queues[signature.name] = _SignatureQueue(self, signature)
        task = _Task(inputs, size)
        signature_queue.tasks.put(task)
        return task.future

    def dispatch(self, signature: Signature, batch: list[_Task], size: int) -> None:
        with self._lock:
            self._pending_batches += 1
        self._pool.submit(self._run, signature, batch, size)

    def _padded_size(self, size: int) -> int:
        return next((s for s in self.params.allowed_batch_sizes if s >= size), size)

    def _run(self, signature: Signature, batch: list[_Task], size: int) -> None:
        if self.metrics is not None:  # TF Serving's queuing_latency: enqueued until its batch starts
            started = time.monotonic()
            for task in batch:
                self.metrics.observe_queuing(started - task.arrived)
        try:
            merged = {
                name: batch[0].inputs[name]
                if len(batch) == 1
                else np.concatenate([t.inputs[name] for t in batch])
                for name in signature.inputs
            }
            padded = self._padded_size(size)
            if padded > size:  # TF Serving pads with copies of the first instance
                merged = {
                    name: np.concatenate([array, np.repeat(array[:1], padded - size, axis=0)])
                    for name, array in merged.items()
                }
            outputs = self.model.predict(signature, merged)
            if self.metrics is not None:
                self.metrics.observe_batch(self.model.name, padded)
            offset = 0
            for task in batch:
                task.future.set_result({k: v[offset : offset + task.size] for k, v in outputs.items()})
                offset += task.size
        except ServingError as exc:
            for task in batch:
                task.future.set_exception(exc)
        except Exception as exc:  # noqa: BLE001 - a batch failure must reach every waiting request
            _log.exception("batch of %d failed", size)
            for task in batch:
                task.future.set_exception(ServingError(grpc.StatusCode.INTERNAL, f"batch failed: {exc}"))
        finally:
            with self._lock:
                self._pending_batches -= 1

    def close(self) -> None:
        for signature_queue in self._queues.values():
            signature_queue.tasks.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)
