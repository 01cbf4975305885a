"""The Open Inference Protocol (KServe V2), as bytes: paths, headers, gRPC methods and body encoders.

Triton speaks it, and so do KServe's runtimes, Seldon MLServer, OpenVINO Model Server and TorchServe's
OIP service: one client for all of them. Everything here is a pure function of the request's shape,
so any engine (the load worker, Locust users) sends what these return and nothing else:

- REST-JSON: `POST /v2/models/{name}/infer`, `{"inputs": [{"name": "x", "shape": [b, f], "datatype":
  "FP32", "data": [...]}]}` (data flattened in row-major order, as the protocol allows everywhere).
- REST-binary: the same endpoint with the binary tensor extension: a JSON header whose input says
  `"binary_data_size"`, then the raw little-endian float32 bytes; the header's length goes in
  `Inference-Header-Content-Length`, and the outputs are asked for as binary too.
- gRPC: `/{service}/ModelInfer`, a ModelInferRequest with the input's bytes in `raw_input_contents`
  (never typed `fp32_contents`). The service is `inference.GRPCInferenceService` (Triton, KServe),
  or another name for a server that registered the protocol under its own package (TorchServe:
  `org.pytorch.serve.grpc.openinference.GRPCInferenceService`).
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import orjson

import inferload_protos as protos

INPUT_NAME = "x"
DATATYPE = "FP32"
OUTPUTS = ("class_ids", "scores")
TRITON_GRPC_SERVICE = "inference.GRPCInferenceService"
TORCHSERVE_GRPC_SERVICE = "org.pytorch.serve.grpc.openinference.GRPCInferenceService"
BINARY_HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
_PROTO_MODULE = "open_inference_grpc_pb2"


def model_path(model_name: str) -> str:
    """Where a V2 server describes a model: name, versions, inputs and outputs with shapes."""
    return f"/v2/models/{quote(model_name, safe='')}"


def infer_path(model_name: str) -> str:
    return f"{model_path(model_name)}/infer"


def ready_path(model_name: str) -> str:
    """200 when the model is ready for inference, 400 (Triton) or another status when not."""
    return f"{model_path(model_name)}/ready"


SERVER_READY_PATH = "/v2/health/ready"


def grpc_method(service: str | None, rpc: str = "ModelInfer") -> str:
    """`/inference.GRPCInferenceService/ModelInfer` (or `rpc` of another service name)."""
    return f"/{service or TRITON_GRPC_SERVICE}/{rpc}"


def _raw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype="<f4")


def encode_json(x: np.ndarray) -> bytes:
    """REST-JSON body: one FP32 input, data flattened row-major; every output returned as JSON."""
    rows = _raw(x)
    tensor = {"name": INPUT_NAME, "shape": list(rows.shape), "datatype": DATATYPE, "data": rows.ravel()}
    document = {"inputs": [tensor]}
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def binary_header(batch: int, features: int) -> bytes:
    """The JSON part of a binary-extension request for a [batch, features] FP32 input."""
    document = {
        "inputs": [
            {
                "name": INPUT_NAME,
                "shape": [batch, features],
                "datatype": DATATYPE,
                "parameters": {"binary_data_size": batch * features * 4},
            }
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in OUTPUTS],
    }
    return orjson.dumps(document)


def encode_binary(x: np.ndarray) -> bytes:
    """REST-binary body: the JSON header, then the input's raw little-endian float32 bytes."""
    rows = _raw(x)
    return binary_header(*rows.shape) + rows.tobytes()


def binary_headers(batch: int, features: int) -> dict[str, str]:
    """The HTTP headers a binary-extension body of this shape needs besides its content type."""
    return {BINARY_HEADER_LENGTH: str(len(binary_header(batch, features)))}


def encode_grpc(x: np.ndarray, model_name: str = "linear") -> bytes:
    """ModelInferRequest with the input's bytes in raw_input_contents (the last field on the wire)."""
    pb2 = protos.load(_PROTO_MODULE)
    rows = _raw(x)
    request = pb2.ModelInferRequest(model_name=model_name)
    tensor = request.inputs.add(name=INPUT_NAME, datatype=DATATYPE)
    tensor.shape.extend(rows.shape)
    request.raw_input_contents.append(rows.tobytes())
    return bytes(request.SerializeToString())


def content_type(protocol: str) -> str:
    return BINARY_CONTENT_TYPE if protocol == "rest-binary" else JSON_CONTENT_TYPE


def request_headers(protocol: str, batch: int, features: int) -> dict[str, str]:
    """Extra HTTP headers of every request of a run (the body's shape is the run's)."""
    return binary_headers(batch, features) if protocol == "rest-binary" else {}


def first_value_span(protocol: str, body: bytes, raw_bytes: int) -> tuple[int, int]:
    """(start, end) of the first input value's encoding in a body from this module (to tag inputs)."""
    if protocol == "rest-json":
        start = body.index(b'"data":[') + len(b'"data":[')
        end = min(i for i in (body.find(b",", start), body.find(b"]", start)) if i >= 0)
        return start, end
    start = len(body) - raw_bytes  # binary: the raw bytes end the body; gRPC: raw_input_contents ends it
    return start, start + 4
