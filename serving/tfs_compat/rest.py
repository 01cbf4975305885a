"""TF Serving's REST API on aiohttp: /v1/models/... status, metadata and :predict.

Paths are matched with TF Serving's own regular expressions (http_rest_api_util.cc), so every URL
form it accepts works here. Request handling (JSON parse, predict, JSON write) runs in a pool of
`--rest_api_num_threads` threads so the event loop keeps accepting connections.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import grpc
from aiohttp import web

from serving.limits import TFS_REST_MAX_BODY_BYTES
from serving.tfs_compat import json_codec, servable
from serving.tfs_compat.errors import ServingError, invalid_argument
from serving.tfs_compat.metrics import Metrics
from serving.tfs_compat.predictor import Predictor

__all__ = ["make_app", "MAX_BODY_BYTES"]

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = TFS_REST_MAX_BODY_BYTES  # full-size batched JSON and base64: hundreds of MiB
_PREDICTION_API = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
_MODEL_STATUS_API = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?"
)
_HANDLED_PATHS = re.compile(r"(?i)/v1/.*")  # kHTTPRestApiHandlerPathRegex
_JSON = "application/json"


def _json_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type=_JSON)


class RestApi:
    """Handlers bound to one predictor; see make_app."""

    def __init__(self, predictor: Predictor, threads: int, metrics: Metrics) -> None:
        self.predictor = predictor
        self.model = predictor.model
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="rest")

    async def dispatch(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        path = request.raw_path.split("?", 1)[0]
        api = "unknown"
        if not _HANDLED_PATHS.fullmatch(path):
            raise web.HTTPNotFound()
        try:
            if request.method == "POST" and (match := _PREDICTION_API.fullmatch(path)):
                name, version, label, method = match.groups()
                api = method.lower()
                body = await _read_body(request)
                loop = asyncio.get_running_loop()
                payload = await loop.run_in_executor(
                    self.pool,
                    self._predict,
                    _unquote(name),
                    _version(version),
                    _unquote(label or ""),
                    api,
                    body,
                )
            elif request.method == "GET" and (match := _MODEL_STATUS_API.fullmatch(path)):
                name, version, label, subresource = match.groups()
                api = "metadata" if subresource else "status"
                payload = self._get(_unquote(name or ""), _version(version), _unquote(label or ""), api)
            else:
                raise invalid_argument(f"Malformed request: {request.method} {path}")
        except ServingError as exc:
            self.metrics.observe(self.model.name, api, "REST", exc.code.name, time.perf_counter() - started)
            return _json_response(exc.http_status, json_codec.encode_error(exc.message))
        self.metrics.observe(self.model.name, api, "REST", "OK", time.perf_counter() - started)
        return _json_response(200, payload)

    def _predict(self, name: str, version: int | None, label: str, method: str, body: bytes) -> bytes:
        try:
            if method != "predict":
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED, f"tfs-compat implements :predict only, not :{method}"
                )
            servable.resolve(self.model, name, version, label)
            decoded = json_codec.decode_predict_request(body, self.model)
            self.predictor.check(decoded.signature, decoded.inputs)
            outputs = self.predictor.predict(decoded.signature, decoded.inputs)
            return json_codec.encode_predict_response(outputs, decoded.format)
        except ServingError:
            raise
        except Exception as exc:  # noqa: BLE001 - any surprise becomes a 500 with a message, never a crash
            _log.exception("REST predict failed")
            raise ServingError(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}") from None

    def _get(self, name: str, version: int | None, label: str, api: str) -> bytes:
        if label:
            servable.resolve(self.model, name, version, label)
        if api == "metadata":
            return servable.metadata_json(servable.metadata_response(self.model, name, version))
        return servable.status_json(servable.status_response(self.model, name, version))

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")


async def _read_body(request: web.Request) -> bytes:
    """The body in one copy: the chunks joined once (aiohttp's read() extends a bytearray, then copies
    it into bytes: two copies of a body that runs to hundreds of MiB at big batches)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body larger than tfs-compat's limit of {MAX_BODY_BYTES} bytes: "
                "send smaller batches, or use gRPC",
                http_status=413,
            )
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _unquote(text: str) -> str:
    return urllib.parse.unquote(text)


def _version(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise invalid_argument(f"Failed to convert version: {text} to numeric.") from None


def make_app(
    predictor: Predictor, *, threads: int, metrics: Metrics, metrics_path: str | None = None
) -> web.Application:
    """The aiohttp application; bodies up to MAX_BODY_BYTES (aiohttp's default is 1 MiB).

    Prometheus metrics are served at `metrics_path` only (None: not at all), as the real binary
    serves them only when its --monitoring_config_file enables them.
    """
    api = RestApi(predictor, threads, metrics)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    if metrics_path is not None:
        app.router.add_get(metrics_path, api.prometheus)
    app.router.add_route("*", "/{tail:.*}", api.dispatch)
    app.on_shutdown.append(lambda _app: _shutdown(api))
    return app


async def _shutdown(api: RestApi) -> None:
    api.pool.shutdown(wait=False, cancel_futures=True)
