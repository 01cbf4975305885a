"""Request bodies per server x protocol, encoded once before load from a seeded pool of inputs.

Why up front: the load generator must only send bytes, so the encode cost (large for JSON: one
full-size instance is ~3.5 MB of text) never hides inside the measured latency. The encode cost
is measured separately here and written to payloads.json for the reports.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import orjson
from pydantic import Field

import inferload_protos as protos
from inferload_formats import PROTOCOLS, SERVERS, Document, strict_fields

from . import _oip
from ._percentiles import percentile
from ._settings import LoadSettings

PAYLOADS_SCHEMA: Final = "inferload.payloads"
PAYLOADS_SCHEMA_VERSION = 1

CONTENT_TYPES: dict[tuple[str, str], str] = {
    ("tfserving", "rest-json"): "application/json",
    ("tfserving", "rest-binary"): "application/json",  # TF Serving's REST API takes JSON only
    ("torchserve", "rest-json"): "application/json",
    ("torchserve", "rest-binary"): "application/octet-stream",
    ("triton", "rest-json"): _oip.content_type("rest-json"),
    ("triton", "rest-binary"): _oip.content_type("rest-binary"),  # the binary tensor extension
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


# Each server x protocol's encoder: (inputs, model name) -> the request body; the REST bodies name no model.
_ENCODERS: Final[dict[tuple[str, str], Callable[[np.ndarray, str], bytes]]] = {
    ("tfserving", "rest-json"): lambda x, _: encode_tfserving_rest_json(x),
    ("tfserving", "rest-binary"): lambda x, _: encode_tfserving_rest_binary(x),
    ("tfserving", "grpc"): encode_tfserving_grpc,
    ("torchserve", "rest-json"): lambda x, _: encode_torchserve_rest_json(x),
    ("torchserve", "rest-binary"): lambda x, _: encode_torchserve_rest_binary(x),
    ("torchserve", "grpc"): encode_torchserve_grpc,
    ("triton", "rest-json"): lambda x, _: _oip.encode_json(x),
    ("triton", "rest-binary"): lambda x, _: _oip.encode_binary(x),
    ("triton", "grpc"): _oip.encode_grpc,
}


def encode_body(server: str, protocol: str, x: np.ndarray, model_name: str = "linear") -> bytes:
    """The bytes one request carries, for any server x protocol (x: float32 [batch, features])."""
    if x.ndim != 2:
        raise ValueError(f"inputs must be 2-D [batch, features], got shape {x.shape}")
    encoder = _ENCODERS.get((server, protocol))
    if encoder is None:
        raise ValueError(
            f"unknown server x protocol {server!r} x {protocol!r}: servers {SERVERS}, protocols {PROTOCOLS}"
        )
    return encoder(x, model_name)


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


@strict_fields
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
                        encode_ms_median=float(percentile(times, 50.0) or 0.0) * 1e3,  # nearest rank
                        encode_ms_min=min(times) * 1e3,
                        repeats=len(times),
                        encoder="orjson" if protocol != "grpc" else "protobuf",
                    )
                )
    return results


PAYLOADS_NOTE = (
    "TF Serving rest-binary is JSON with base64 strings: its REST API accepts JSON only; Triton "
    "rest-binary is the Open Inference Protocol's binary tensor extension (a JSON header, then raw float32)"
)


class PayloadsDocument(Document):
    """payloads.json (`inferload.payloads` v1): the encode cost and body size of each body format."""

    schema_: Literal["inferload.payloads"] = Field(default=PAYLOADS_SCHEMA, alias="schema")
    schema_version: int = PAYLOADS_SCHEMA_VERSION
    note: str = PAYLOADS_NOTE
    encodings: list[EncodingRecord]


def write_payloads_json(path: str | Path, records: Iterable[EncodingRecord]) -> Path:
    """payloads.json: {"schema": "inferload.payloads", "schema_version": 1, "note", "encodings": [...]}."""
    return PayloadsDocument(encodings=list(records)).write(path)


def read_payloads_json(path: str | Path) -> list[EncodingRecord]:
    """The encodings of a payloads.json written by `write_payloads_json`; SchemaError for another schema
    or version, or an entry whose fields are not exactly EncodingRecord's."""
    return PayloadsDocument.read(path).encodings


# ---------------------------------------------------------------- distinct and repeated inputs
# A cache keyed on the body needs inputs that are really distinct, far more of them than a pool of
# pre-encoded bodies can hold at full size (1-3.5 MB each). So the n-th distinct input of a stream
# is a pooled body whose first value has its 23 low mantissa bits set to a tag made of the stream
# (7 bits) and a counter (16 bits): a byte-level patch, no re-encoding, same size (JSON: the first
# number is re-printed). Tags differ, so bodies differ; sign and exponent stay, so values stay finite.

_TAG_COUNTER_BITS = 16
_TAG_STREAMS = 1 << 7
_MANTISSA = (1 << 23) - 1


def _with_tag(raw4: bytes, tag: int) -> bytes:
    bits = int.from_bytes(raw4, "little")
    return ((bits & ~_MANTISSA) | (tag & _MANTISSA)).to_bytes(4, "little")


class FreshInputs:
    """The n-th distinct input of one stream as request bytes, made from the pooled bodies."""

    def __init__(self, bodies: list[bytes], *, server: str, protocol: str, batch: int, features: int,
                 stream: int) -> None:
        if not bodies:
            raise ValueError("the payload pool is empty: build at least one request body")
        self._bodies = bodies
        self._oip = server == "triton"
        self._protocol = protocol
        self._kind = "json" if protocol == "rest-json" else (
            "b64" if (server, protocol) == ("tfserving", "rest-binary") else "raw")
        self._stream_bits = (stream % _TAG_STREAMS) << _TAG_COUNTER_BITS
        self._spans = [self._first_value(body, batch * features * 4) for body in bodies]

    def _first_value(self, body: bytes, raw_bytes: int) -> tuple[int, int]:
        """(start, end) of the first value's encoding in `body`."""
        if self._oip:
            return _oip.first_value_span(self._protocol, body, raw_bytes)
        if self._kind == "raw":  # raw float32 at the end of a gRPC message, or the whole octet body
            start = len(body) - raw_bytes
            return start, start + 4
        if self._kind == "b64":  # {"signature_name": ..., "instances": [{"b64": "<4 chars = 3 bytes>...
            start = body.index(b'"b64":"') + len(b'"b64":"')
            return start, start + 4
        start = body.index(b"[[") + 2  # {"instances":[[<number>,...
        end = min(i for i in (body.find(b",", start), body.find(b"]", start)) if i >= 0)
        return start, end

    @property
    def capacity(self) -> int:
        """Distinct inputs before the tags repeat."""
        return len(self._bodies) * ((1 << _TAG_COUNTER_BITS) - 1)

    def body(self, n: int) -> bytes:
        """The n-th distinct input (n >= 0); the same n gives the same bytes."""
        index, counter = n % len(self._bodies), n // len(self._bodies) % ((1 << _TAG_COUNTER_BITS) - 1) + 1
        tag = self._stream_bits | counter
        body = self._bodies[index]
        start, end = self._spans[index]
        if self._kind == "raw":
            patch = _with_tag(body[start:end], tag)
        elif self._kind == "b64":  # 4 base64 chars = the value's 3 low bytes (its exponent's top bits stay)
            low3 = base64.b64decode(body[start:end])
            patch = base64.b64encode(_with_tag(low3 + b"\x3f", tag)[:3])
        else:
            value = np.float32(float(body[start:end]))
            tagged = np.frombuffer(_with_tag(value.tobytes(), tag), dtype="<f4")[0]
            patch = orjson.dumps(tagged, option=orjson.OPT_SERIALIZE_NUMPY)
        view = memoryview(body)  # the two untouched parts go into the join as views: one copy, not two
        return b"".join((view[:start], patch, view[end:]))


class RepeatingChoice:
    """Each request reuses an input this stream already sent with probability `share`, else a fresh one.

    Seeded; repeats pick uniformly among the stream's earlier inputs, so a cache that kept every answer
    would hit about `share` of the requests (less while first requests are still in flight).
    """

    def __init__(self, fresh: FreshInputs, share: float, seed: np.random.SeedSequence | int) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"repeat_share must be in [0, 1], got {share}")
        self._fresh = fresh
        self._share = share
        self._rng = np.random.default_rng(seed)
        self._sent = 0
        self.repeats = 0

    def __call__(self) -> bytes:
        if self._sent and self._rng.random() < self._share:
            self.repeats += 1
            return self._fresh.body(int(self._rng.integers(0, self._sent)))
        n = self._sent
        self._sent += 1
        return self._fresh.body(n)


class ZipfChoice:
    """Each request picks input k of a catalog of distinct inputs with probability proportional to 1/k^s.

    The catalog is this stream's first `catalog_size` fresh inputs (made on demand, never stored).
    """

    _BLOCK = 4096

    def __init__(self, fresh: FreshInputs, s: float, catalog_size: int,
                 seed: np.random.SeedSequence | int) -> None:
        if not s > 0 or catalog_size < 1:
            raise ValueError(f"Zipf needs s > 0 and a catalog of at least 1 input, got s={s}, {catalog_size}")
        if catalog_size > fresh.capacity:
            raise ValueError(f"catalog_size {catalog_size} exceeds the {fresh.capacity} possible inputs")
        weights = 1.0 / np.arange(1, catalog_size + 1, dtype=np.float64) ** s
        self.probabilities = weights / weights.sum()
        self._fresh = fresh
        self._rng = np.random.default_rng(seed)
        self._picks: list[int] = []

    def __call__(self) -> bytes:
        if not self._picks:
            drawn = self._rng.choice(len(self.probabilities), size=self._BLOCK, p=self.probabilities)
            self._picks = drawn.tolist()[::-1]
        return self._fresh.body(self._picks.pop())


def repeat_choice(settings: LoadSettings, bodies: list[bytes],
                  stream: int) -> RepeatingChoice | ZipfChoice | None:
    """The body chooser of `repeat_share` or `zipf_s` for one stream (None: uniform over the pool)."""
    if settings.repeat_share is None and settings.zipf_s is None:
        return None
    from ._arrivals import stream_seed

    fresh = FreshInputs(bodies, server=settings.server, protocol=settings.protocol, batch=settings.batch,
                        features=settings.features, stream=stream)
    # A seed of its own: the schedule and the uniform pool choice stay as they were.
    seed = stream_seed(settings.payload_seed + 7_919, stream)
    if settings.zipf_s is not None:
        return ZipfChoice(fresh, settings.zipf_s, settings.catalog_size, seed)
    assert settings.repeat_share is not None
    return RepeatingChoice(fresh, settings.repeat_share, seed)
