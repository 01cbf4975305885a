"""TorchServe handler for the linear classifier; packaged into linear.mar and run by TorchServe's worker.

Self-contained on purpose (only torch, numpy, json/orjson): the worker imports it as a bare module from
the unpacked archive, without the inferload packages on its path.

One call gets a list of requests (server-side batching). Each request may be JSON
(`{"instances": [[...], ...]}`, also `{"inputs": ...}` or a bare list; already decoded to a dict/list by
TorchServe, or bytes/str when it did not decode), raw little-endian float32 (`application/octet-stream`,
or gRPC `input["data"]` which carries no content type). All valid requests of a batch run in one matmul;
a bad request gets its own 4xx status and `{"error": ...}` body while the others still succeed.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any

import numpy as np
import torch

try:
    import orjson
except ImportError:  # the handler must still work in a worker without orjson
    orjson = None  # type: ignore[assignment]
try:
    from ts.utils.util import PredictionException
except ImportError:  # outside TorchServe (unit tests without ts): gRPC errors stay in the body
    PredictionException = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)
# Which JSON library this worker parses and writes with: each response names it (a header), so a
# report can tell whether an image without orjson measured the slower stdlib path.
JSON_PARSER = "orjson" if orjson is not None else "json"
JSON_PARSER_HEADER = "X-Inferload-Json-Parser"
# Binary bodies are wrapped read-only (np.frombuffer, no copy); the matmul only reads them.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

WEIGHTS_FILE = "weights.npy"
JSON_TYPES = ("application/json", "text/json")
BINARY_TYPES = ("application/octet-stream", "application/x-float32")
# A file uploaded as multipart form data (perf_analyzer's only way to send TorchServe an input): TorchServe
# hands the handler the part's bytes under its field name; without a JSON type on the part they are raw
# float32, as in an octet-stream body.
FORM_TYPES = ("multipart/form-data",)


class BadRequest(Exception):
    """A request the handler cannot serve; becomes that request's HTTP status and error body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj, default=lambda a: a.tolist()).encode()


def _loads(raw: bytes | bytearray | str) -> Any:
    try:
        return orjson.loads(raw) if orjson is not None else json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from None


def _unsupported(content_type: str) -> str:
    return f"unsupported Content-Type {content_type!r}: send application/json or application/octet-stream"


def _is_grpc(context: Any, idx: int, row: Any) -> bool:
    """gRPC requests reach the handler as input "data" with no HTTP headers (no Content-Type, no Host)."""
    try:
        headers = context.get_all_request_header(idx) or {}
    except (AttributeError, IndexError, KeyError, TypeError):
        return False
    http = any(isinstance(key, str) and key.lower() in ("content-type", "host") for key in headers)
    return not http and isinstance(row, dict) and "data" in row


def _content_type(context: Any, idx: int, row: Any) -> str:
    """The request's content type, lower-case without parameters ('' for gRPC and unknown)."""
    found = None
    try:
        headers = context.get_all_request_header(idx) or {}
    except (AttributeError, IndexError, KeyError, TypeError):
        headers = {}
    for name in ("data", "body"):  # TorchServe records each input parameter's content type under its name
        value = headers.get(name)
        if isinstance(row, dict) and name in row and isinstance(value, dict) and value.get("content-type"):
            found = value["content-type"]
            break
    if found is None:
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == "content-type" and isinstance(value, str):
                found = value
                break
    if found is None:
        try:
            found = context.get_request_header(idx, "Content-Type")
        except (AttributeError, IndexError, KeyError, TypeError):
            found = None
    return (found or "").split(";")[0].strip().lower()


def _is_describe(context: Any, idx: int = 0) -> bool:
    """TorchServe marks a describe call (`?customized=true`) with the request header describe=True."""
    try:
        return context.get_request_header(idx, "describe") == "True"
    except (AttributeError, IndexError, KeyError, TypeError):
        return False


class LinearHandler:
    """Holds the weights as a torch tensor; parses, predicts and encodes one batch of requests."""

    def __init__(self) -> None:
        self.weights: torch.Tensor | None = None
        self.features = 0

    def initialize(self, context: Any) -> None:
        model_dir = context.system_properties.get("model_dir") or "."
        array = np.load(os.path.join(model_dir, WEIGHTS_FILE))
        self.weights = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        self.features = int(self.weights.shape[1])
        logger.info("linear handler ready: %d classes x %d features", self.weights.shape[0], self.features)

    # --- parsing -----------------------------------------------------------------------------------
    def parse(self, row: Any, content_type: str) -> np.ndarray:
        """One request -> float32 [n, features]; raises BadRequest naming what is wrong."""
        payload = row
        if isinstance(row, dict):
            payload = row.get("data")
            if payload is None:
                payload = row.get("body")
            if payload is None and row:  # e.g. a form-encoded POST: TorchServe split it into fields
                raise BadRequest(
                    f"no request body found (Content-Type {content_type or 'missing'!r} was read as "
                    "form fields): send Content-Type application/json or application/octet-stream",
                    status=415,
                )
        if payload is None or (isinstance(payload, (bytes, bytearray, str)) and len(payload) == 0):
            raise BadRequest('empty request body: send JSON {"instances": [[...]]} or raw float32 bytes')
        if isinstance(payload, (bytes, bytearray)):
            if content_type in JSON_TYPES or content_type.endswith("+json"):
                return self._from_json(_loads(payload))
            if content_type in BINARY_TYPES or content_type in FORM_TYPES or content_type == "":
                return self._from_binary(payload)
            raise BadRequest(_unsupported(content_type), status=415)
        if isinstance(payload, str):
            if content_type in JSON_TYPES or content_type.endswith("+json") or content_type == "":
                return self._from_json(_loads(payload))
            raise BadRequest(_unsupported(content_type), status=415)
        return self._from_json(payload)

    def _from_binary(self, payload: bytes | bytearray) -> np.ndarray:
        instance_bytes = 4 * self.features
        if len(payload) % instance_bytes:
            raise BadRequest(
                f"binary body of {len(payload)} bytes is not a whole number of instances: each instance is "
                f"{self.features} little-endian float32 values = {instance_bytes} bytes"
            )
        return np.frombuffer(payload, dtype="<f4").reshape(-1, self.features)

    def _from_json(self, document: Any) -> np.ndarray:
        if isinstance(document, dict):
            if "instances" in document:
                instances = document["instances"]
            elif "inputs" in document:
                instances = document["inputs"]
            else:
                keys = ", ".join(map(str, list(document)[:5])) or "none"
                raise BadRequest(f'JSON body needs an "instances" list of rows; found keys: {keys}')
        elif isinstance(document, list):
            instances = document
        else:
            raise BadRequest(
                f'JSON body must be an object with "instances" or a list, not {type(document).__name__}'
            )
        try:
            array = np.asarray(instances, dtype=np.float32)
        except (ValueError, TypeError):
            raise BadRequest('"instances" must be a rectangular list of rows of numbers') from None
        if array.ndim == 1 and array.shape[0] == self.features:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != self.features or array.shape[0] == 0:
            raise BadRequest(
                f'"instances" has shape {list(array.shape)}, expected [batch >= 1, {self.features}]: '
                f"each row must hold {self.features} numbers"
            )
        return array

    # --- describe ----------------------------------------------------------------------------------
    def describe_handle(self) -> str:
        """What `GET /models/linear?customized=true` shows as customizedMetadata: the input width and
        class count, so a load generator can check its payloads fit before sending any."""
        assert self.weights is not None
        classes, features = (int(n) for n in self.weights.shape)
        return json.dumps({"features": features, "classes": classes, "input": "float32 [batch, features]"})

    # --- the batch ---------------------------------------------------------------------------------
    def handle(self, data: list | None, context: Any) -> list | None:
        if data is None:  # TorchServe's function entry point calls handle(None, ctx) to initialize
            self.initialize(context)
            return None
        if self.weights is None:
            self.initialize(context)
        described = {idx for idx in range(len(data)) if _is_describe(context, idx)}
        if len(described) == len(data):
            return [self.describe_handle() for _ in data]
        inputs: list[tuple[int, np.ndarray]] = []
        errors: dict[int, BadRequest] = {}
        for idx, row in enumerate(data):
            if idx in described:  # a describe call batched with predictions answers on its own
                continue
            try:
                inputs.append((idx, self.parse(row, _content_type(context, idx, row))))
            except BadRequest as exc:
                errors[idx] = exc
            except Exception as exc:  # noqa: BLE001 - one odd request must never take the batch down
                logger.exception("could not parse request %d", idx)
                errors[idx] = BadRequest(f"could not read request: {exc}")
        if len(data) == 1 and errors and PredictionException is not None and _is_grpc(context, 0, data[0]):
            # TorchServe's gRPC frontend ignores per-request status and would answer OK with the error
            # body; a batch-level exception is the only way to give a gRPC client a real error status.
            raise PredictionException(errors[0].message, errors[0].status)
        results: list[Any] = [None] * len(data)
        for idx in described:
            results[idx] = self.describe_handle()
        for idx, error in errors.items():
            results[idx] = self._error(context, idx, error.status, error.message)
        if inputs:
            try:
                self._predict_into(results, inputs, context)
            except Exception as exc:  # noqa: BLE001 - answer every request rather than kill the worker
                logger.exception("prediction failed")
                for idx, _ in inputs:
                    results[idx] = self._error(context, idx, 500, f"prediction failed: {exc}")
        return results

    def _predict_into(self, results: list, inputs: list[tuple[int, np.ndarray]], context: Any) -> None:
        assert self.weights is not None
        arrays = [array for _, array in inputs]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        with torch.inference_mode():
            scores = torch.matmul(torch.from_numpy(np.ascontiguousarray(batch)), self.weights.T)
            class_ids = torch.argmax(scores, dim=1)
        scores_np = scores.numpy()
        class_ids_np = class_ids.numpy().astype(np.int64)
        start = 0
        for idx, array in inputs:
            stop = start + array.shape[0]
            results[idx] = _dumps({"class_ids": class_ids_np[start:stop], "scores": scores_np[start:stop]})
            _set_content_type(context, idx)
            start = stop

    @staticmethod
    def _error(context: Any, idx: int, status: int, message: str) -> bytes:
        try:
            context.set_response_status(status, message, idx)
        except Exception:  # noqa: BLE001 - a context without per-request status still gets the body
            logger.warning("could not set status %d for request %d", status, idx)
        _set_content_type(context, idx)
        return _dumps({"error": message})


def _set_content_type(context: Any, idx: int) -> None:
    try:
        context.set_response_content_type(idx, "application/json")
        context.set_response_header(idx, JSON_PARSER_HEADER, JSON_PARSER)
    except Exception:  # noqa: BLE001 - content type is cosmetic; never fail a request for it
        pass


_service = LinearHandler()


def handle(data: list | None, context: Any) -> list | None:
    """TorchServe entry point (function form: also called with data=None to initialize)."""
    return _service.handle(data, context)
