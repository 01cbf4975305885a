"""gRPC stubs, generated at set-up (never committed) by `python -m inferload_protos`.

A top-level package of its own, so that `loadtest/` encodes requests without importing the CLI
package (`inferload/`).

- TorchServe: `inference.proto` / `management.proto`, extracted from the `.proto` files that ship
  inside the installed torchserve package's frontend jar, so the stubs always match the server.
- The Open Inference Protocol (KServe V2: Triton, KServe, MLServer, OVMS, TorchServe's OIP service):
  `open_inference_grpc.proto`, from the same jar (TorchServe serves the protocol too). Its package
  there is `org.pytorch.serve.grpc.openinference`; the package names only the gRPC service path,
  which the load generator sets itself (Triton's is `inference.GRPCInferenceService`), never the
  messages' bytes, so the stubs encode requests for any OIP server.
- TF Serving: `tfserving_predict.proto`, a wire-compatible subset of tensorflow_serving's
  PredictRequest/PredictResponse (committed source), so that load processes can encode requests
  without importing TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_HINT = "gRPC stubs are missing: run `make setup` (or `python -m inferload_protos`) to generate them."


def load(module: str) -> ModuleType:
    """Import a generated stub module (e.g. "inference_pb2"), with a clear error if not generated."""
    try:
        return importlib.import_module(f"inferload_protos.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("inferload_protos"):
            raise RuntimeError(_HINT) from exc
        raise
