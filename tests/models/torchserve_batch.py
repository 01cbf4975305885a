"""Build a handler batch exactly as TorchServe's Python worker does, to unit-test the handler in-process.

Uses TorchServe's own `Service.retrieve_data_for_inference` and `Context`, so the handler sees the same
rows (`body` for HTTP, `data` for gRPC), the same header dict and the same per-request status API.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts.context import Context
from ts.service import Service


@dataclass(frozen=True)
class Request:
    """One request as the frontend forwards it: HTTP body with a Content-Type, or gRPC input["data"]."""

    value: Any
    content_type: str | None = "application/json"  # None: a gRPC request (no HTTP headers)


def http_json(value: Any) -> Request:
    """An application/json body; TorchServe has already decoded it when value is a dict or list."""
    return Request(value, "application/json")


def http_binary(value: bytes) -> Request:
    return Request(bytearray(value), "application/octet-stream")


def grpc(value: bytes) -> Request:
    return Request(bytearray(value), None)


def make_context(model_dir: Path, batch_size: int = 1) -> Context:
    return Context("linear", str(model_dir), {"model": {"modelName": "linear"}}, batch_size, None, "0.12.0")


def prepare(context: Context, requests: list[Request]) -> list[dict]:
    """The handler's `data` list; sets the context's per-request header processors as the worker does."""
    batch = []
    for idx, request in enumerate(requests):
        if request.content_type is None:
            parameters = [{"name": "data", "contentType": "", "value": request.value}]
            headers = None
        else:
            parameters = [{"name": "body", "contentType": request.content_type, "value": request.value}]
            headers = [
                {"name": b"Content-Type", "value": request.content_type.encode()},
                {"name": b"Host", "value": b"127.0.0.1"},
            ]
        batch.append({"requestId": str(idx).encode(), "parameters": parameters, "headers": headers})
    processors, input_batch, request_ids = Service.retrieve_data_for_inference(batch)
    context.request_ids = request_ids
    context.request_processor = processors
    return input_batch


def unpack_mar(mar: Path, into: Path) -> Path:
    with zipfile.ZipFile(mar) as archive:
        archive.extractall(into)
    return into
