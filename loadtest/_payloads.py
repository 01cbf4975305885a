"""Request bodies per server x protocol, encoded once before load from a seeded pool of inputs.

Why up front: the load generator must only send bytes, so the encode cost (large for JSON: one
full-size instance is ~3.5 MB of text) never hides inside the measured latency. The encode cost
is measured separately here and written to payloads.json for the reports.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson

from inferload import protos

from ._settings import PROTOCOLS, SERVERS, LoadSettings

PAYLOADS_SCHEMA = "inferload.payloads"
PAYLOADS_SCHEMA_VERSION = 1

CONTENT_TYPES: dict[tuple[str, str], str] = {
    ("tfserving", "rest-json"): "application/json",
    ("tfserving", "rest-binary"): "application/json",  # TF Serving's REST API takes JSON only
    ("torchserve", "rest-json"): "application/json",
    ("torchserve", "rest-binary"): "application/octet-stream",
}


def make_inputs(features: int, batch: int, count: int, seed: int) -> list[np.ndarray]:
    """`count` distinct float32 [batch, features] inputs, deterministic from the seed."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, features), dtype=np.float32) for _ in range(count)]


def _little_endian(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype="<f4")


def encode_tfserving_rest_json(x: np.ndarray) -> bytes:
    return orjson.dumps({"instances": _little_endian(x)}, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_tfserving_rest_binary(x: np.ndarray) -> bytes:
    """`predict_bytes` signature: one base64 string of raw little-endian float32 per instance."""
    rows = _little_endian(x)
    instances = [{"b64": base64.b64encode(row.tobytes()).decode("ascii")} for row in rows]
    return orjson.dumps({"signature_name": "predict_bytes", "instances": instances})


def encode_tfserving_grpc(x: np.ndarray, model_name: str = "linear") -> bytes:
    """PredictRequest with tensor_content bytes (never float_val), serialized without TensorFlow."""
    predict_pb2 = protos.load("tfserving_predict_pb2")
    rows = _little_endian(x)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_default"
    tensor = request.inputs["x"]
    tensor.dtype = predict_pb2.DT_FLOAT
    for size in rows.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = rows.tobytes()
    return bytes(request.SerializeToString())


def encode_torchserve_rest_json(x: np.ndarray) -> bytes:
    return encode_tfserving_rest_json(x)


def encode_torchserve_rest_binary(x: np.ndarray) -> bytes:
    return _little_endian(x).tobytes()


def encode_torchserve_grpc(x: np.ndarray, model_name: str = "linear") -> bytes:
    inference_pb2 = protos.load("inference_pb2")
    request = inference_pb2.PredictionsRequest(model_name=model_name)
    request.input["data"] = _little_endian(x).tobytes()
    return bytes(request.SerializeToString())


def encode_body(server: str, protocol: str, x: np.ndarray, model_name: str = "linear") -> bytes:
    """The bytes one request carries, for any server x protocol (x: float32 [batch, features])."""
    if x.ndim != 2:
        raise ValueError(f"inputs must be 2-D [batch, features], got shape {x.shape}")
    if (server, protocol) == ("tfserving", "rest-json"):
        return encode_tfserving_rest_json(x)
    if (server, protocol) == ("tfserving", "rest-binary"):
        return encode_tfserving_rest_binary(x)
    if (server, protocol) == ("tfserving", "grpc"):
        return encode_tfserving_grpc(x, model_name)
    if (server, protocol) == ("torchserve", "rest-json"):
        return encode_torchserve_rest_json(x)
    if (server, protocol) == ("torchserve", "rest-binary"):
        return encode_torchserve_rest_binary(x)
    if (server, protocol) == ("torchserve", "grpc"):
        return encode_torchserve_grpc(x, model_name)
    raise ValueError(
        f"unknown server x protocol {server!r} x {protocol!r}: servers {SERVERS}, protocols {PROTOCOLS}"
    )


@dataclass(frozen=True)
class PayloadPool:
    """Encoded request bodies and what encoding each one cost."""

    bodies: list[bytes]
    encode_s: list[float]

    def __len__(self) -> int:
        return len(self.bodies)


def build_pool(settings: LoadSettings) -> PayloadPool:
    """Encode settings.effective_pool_size distinct inputs (seeded by payload_seed), timing each."""
    inputs = make_inputs(
        settings.features, settings.batch, settings.effective_pool_size, settings.payload_seed
    )
    bodies: list[bytes] = []
    encode_s: list[float] = []
    for x in inputs:
        start = time.perf_counter()
        bodies.append(encode_body(settings.server, settings.protocol, x, settings.model_name))
        encode_s.append(time.perf_counter() - start)
    return PayloadPool(bodies=bodies, encode_s=encode_s)


@dataclass(frozen=True)
class EncodingRecord:
    """Encode cost and body size of one server x protocol x batch (median over repeats)."""

    server: str
    protocol: str
    batch: int
    features: int
    body_bytes: int
    encode_ms_median: float
    encode_ms_min: float
    repeats: int
    encoder: str


def measure_encoding(
    *,
    features: int,
    batches: Iterable[int] = (1,),
    servers: Iterable[str] = SERVERS,
    protocols: Iterable[str] = PROTOCOLS,
    repeats: int = 5,
    seed: int = 1,
    model_name: str = "linear",
) -> list[EncodingRecord]:
    """Time encode_body per server x protocol x batch: the cost a client pays per request."""
    results = []
    for batch in batches:
        x = make_inputs(features, batch, 1, seed)[0]
        for server in servers:
            for protocol in protocols:
                times = []
                body = b""
                for _ in range(max(1, repeats)):
                    start = time.perf_counter()
                    body = encode_body(server, protocol, x, model_name)
                    times.append(time.perf_counter() - start)
                results.append(
                    EncodingRecord(
                        server=server,
                        protocol=protocol,
                        batch=batch,
                        features=features,
                        body_bytes=len(body),
                        encode_ms_median=statistics.median(times) * 1e3,
                        encode_ms_min=min(times) * 1e3,
                        repeats=len(times),
                        encoder="orjson" if protocol != "grpc" else "protobuf",
                    )
                )
    return results


def write_payloads_json(path: str | Path, records: Iterable[EncodingRecord]) -> Path:
    """payloads.json: {"schema": "inferload.payloads", "schema_version": 1, "encodings": [...]}."""
    path = Path(path)
    document = {
        "schema": PAYLOADS_SCHEMA,
        "schema_version": PAYLOADS_SCHEMA_VERSION,
        "note": "TF Serving rest-binary is JSON with base64 strings: its REST API accepts JSON only",
        "encodings": [asdict(r) for r in records],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
