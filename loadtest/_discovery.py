"""What a server serves: the model's input width, read from the server's own description API.

Why ask the server: a load run whose payloads do not fit the served model sends nothing but errors,
and a typo'd model name does the same. Both servers can say what they serve, so the mismatch is
caught before the load starts:
- TF Serving: `GET /v1/models/<name>/metadata`, the `serving_default` signature's input shape.
- TorchServe: `GET <management>/models/<name>?customized=true`, which runs our handler's
  `describe_handle` (models/torchserve_handler.py) and returns its JSON as `customizedMetadata`.
- A V2 server (Triton, KServe, MLServer, OVMS): `GET /v2/models/<name>` (its input's name, datatype
  and shape [-1, features]; the `scores` output's [-1, classes]) and `GET /v2/models/<name>/ready`,
  or their gRPC twins `ModelMetadata` and `ModelReady` (metadata URL `grpc://HOST:PORT`).
Plain HTTP with the standard library: no TensorFlow, no protobuf, so load processes stay light (the
V2 gRPC twin uses the generated stubs' messages over raw-bytes calls).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
from dataclasses import dataclass
from urllib.parse import quote

from . import _oip
from ._security import (
    AUTH_REFUSED_HTTP_CODES,
    TORCHSERVE_REFUSAL,
    Api,
    Credentials,
    Security,
    describe_tls_failure,
    open_url,
)
from ._settings import metadata_url_for, split_host

__all__ = [
    "AccessRefused",
    "DescriptionUnavailable",
    "DiscoveryError",
    "ModelNotReady",
    "ModelNotServed",
    "ServedModel",
    "describe_served_model",
    "served_features",
    "v2_ready_problem",
]

TIMEOUT_S = 5.0
NO_VERSION = "has no available versions"  # Triton: the model is known, none of its versions is loaded
SIGNATURE = "serving_default"
_BODY_TEXT = 300


class DiscoveryError(RuntimeError):
    """The served model could not be described; the message says where it asked and what to fix."""


class DescriptionUnavailable(DiscoveryError):
    """Nothing (or something else) answered at the description API."""


class ModelNotServed(DiscoveryError):
    """The server answers, but serves no model of that name."""


class ModelNotReady(DiscoveryError):
    """A V2 server knows the model but says it is not ready for inference (loading, failed, unloaded)."""


class AccessRefused(DiscoveryError):
    """The description API refused our credentials (or wants some): HTTP 401/403, or TorchServe's
    token message."""


def is_refusal(code: int, text: str) -> bool:
    """An HTTP answer that refuses the credentials: 401/403, or TorchServe 0.12's token message (which
    comes with another status)."""
    return code in AUTH_REFUSED_HTTP_CODES or TORCHSERVE_REFUSAL in text


@dataclass(frozen=True)
class ServedModel:
    """The served model as its server describes it."""

    server: str
    model_name: str
    features: int | None  # None: the server does not say (e.g. a handler without describe_handle)
    classes: int | None
    source: str  # the URL it was read from
    input_name: str | None = None  # V2 servers: the model's one input tensor, and its datatype
    datatype: str | None = None


def served_features(
    server: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    protocol: str = "rest-json",
    model_name: str = "linear",
    metadata_url: str | None = None,
    timeout_s: float = TIMEOUT_S,
    security: Security | None = None,
    credentials: Credentials | None = None,
    grpc_service: str | None = None,
) -> int:
    """The served model's input feature count, for a load target given as host/port (+ protocol).

    `metadata_url` (TF Serving's REST base, or TorchServe's management API) is needed when the
    target is not at the standard ports; raises DiscoveryError naming what to fix.
    """
    tls = security is not None and security.tls
    url = metadata_url or metadata_url_for(server, protocol, host, port, tls=tls)
    if url is None:
        api = "TF Serving's REST API" if server == "tfserving" else "TorchServe's management API"
        raise DiscoveryError(
            f"cannot tell where {server} describes its model for a {protocol} target at port {port}: "
            f"give the metadata URL ({api}, e.g. http://{host}:{8501 if server == 'tfserving' else 8081})"
        )
    described = describe_served_model(server, url, model_name, timeout_s=timeout_s, security=security,
                                      credentials=credentials, grpc_service=grpc_service)
    if described.features is None:
        raise DiscoveryError(
            f"{server} at {described.source} does not say the input width of model {model_name!r}: "
            "give the feature count yourself (--features)"
        )
    return described.features


def describe_served_model(
    server: str,
    metadata_url: str,
    model_name: str,
    *,
    timeout_s: float = TIMEOUT_S,
    security: Security | None = None,
    credentials: Credentials | None = None,
    grpc_service: str | None = None,
) -> ServedModel:
    """Ask `server` at `metadata_url` (no path) what `model_name` is; raises DiscoveryError.

    `security`/`credentials`: TLS for an https:// URL, and the headers to send (TorchServe's
    management key for its management API). `grpc_service`: a V2 server's gRPC service, for a
    grpc:// metadata URL (None: Triton's)."""
    base = metadata_url.rstrip("/")
    name = quote(model_name, safe="")
    access = (security, credentials)
    if server == "tfserving":
        url = f"{base}/v1/models/{name}/metadata"
        document = _get_json(url, server, model_name, timeout_s, access)
        features, classes = _tfserving_shape(document, url)
    elif server == "torchserve":
        url = f"{base}/models/{name}?customized=true"
        document = _get_json(url, server, model_name, timeout_s, access)
        features, classes = _torchserve_shape(document, url)
    elif server == "triton":
        return _describe_v2(base, model_name, timeout_s, grpc_service, access)
    else:
        raise ValueError(f"unknown server {server!r}: expected tfserving, torchserve or triton")
    return ServedModel(server, model_name, features, classes, url)


def _describe_v2(
    base: str, model_name: str, timeout_s: float, grpc_service: str | None,
    access: tuple[Security | None, Credentials | None] = (None, None),
) -> ServedModel:
    """A V2 server's model metadata, then its readiness (REST, or gRPC for a grpc:// base)."""
    if base.startswith("grpc://"):
        return _describe_v2_grpc(base, model_name, timeout_s, grpc_service or _oip.TRITON_GRPC_SERVICE)
    url = f"{base}{_oip.model_path(model_name)}"
    try:
        document = _get_json(url, "triton", model_name, timeout_s, access)
    except ModelNotServed as exc:
        if NO_VERSION in str(exc):  # Triton knows the model, but no version is loaded
            raise ModelNotReady(
                f"{exc}; the model is known there but not ready (unloaded, still loading or failed to "
                "load): wait until it has loaded, or see the server's log"
            ) from None
        raise
    described = _v2_shape(document, url, model_name)
    ready_url = f"{base}{_oip.ready_path(model_name)}"
    security, credentials = access
    try:
        with open_url(ready_url, security=security, credentials=credentials, api="inference",
                      timeout_s=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise ModelNotReady(
            f"the V2 server at {base} serves model {model_name!r} but it is not ready ({ready_url}: HTTP "
            f"{exc.code} {_error_text(exc)}): wait until it has loaded, or see the server's log"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DescriptionUnavailable(f"nothing answers at {ready_url} ({reason})") from None
    return described


def _v2_shape(document: object, source: str, model_name: str) -> ServedModel:
    """(features, classes, input name and datatype) from V2 model metadata (REST JSON or gRPC fields)."""
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise DescriptionUnavailable(f"{source} is not V2 model metadata (no `inputs`): is this a V2 server?")
    inputs = [entry for entry in document["inputs"] if isinstance(entry, dict)]
    outputs = [entry for entry in document.get("outputs") or [] if isinstance(entry, dict)]
    features = _last_of(inputs[0].get("shape")) if len(inputs) == 1 else None
    scores = next((entry for entry in outputs if entry.get("name") == "scores"), None)
    return ServedModel(
        server="triton",
        model_name=model_name,
        features=features,
        classes=_last_of(scores.get("shape")) if scores else None,
        source=source,
        input_name=str(inputs[0].get("name")) if len(inputs) == 1 else None,
        datatype=str(inputs[0].get("datatype")) if len(inputs) == 1 else None,
    )


def _last_of(shape: object) -> int | None:
    if not isinstance(shape, list) or not shape:
        return None
    return _positive(int(shape[-1])) if isinstance(shape[-1], int | str) else None


def _describe_v2_grpc(base: str, model_name: str, timeout_s: float, service: str) -> ServedModel:
    """ModelMetadata and ModelReady over gRPC (raw-bytes calls; the messages from the generated stubs)."""
    import grpc

    import inferload_protos as protos

    pb2 = protos.load("open_inference_grpc_pb2")
    host, port = split_host(base)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    channel = grpc.insecure_channel(target)
    try:
        metadata_call = channel.unary_unary(f"/{service}/ModelMetadata")
        ready_call = channel.unary_unary(f"/{service}/ModelReady")
        try:
            request = pb2.ModelMetadataRequest(name=model_name).SerializeToString()
            raw = metadata_call(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            codes = grpc.StatusCode
            unknown = (codes.NOT_FOUND, codes.INVALID_ARGUMENT, codes.UNAVAILABLE)
            if code in unknown and NO_VERSION in (details or ""):
                raise ModelNotReady(
                    f"the V2 server at {target} knows model {model_name!r} but it is not ready (gRPC "
                    f"ModelMetadata: {details}): wait until it has loaded, or see the server's log"
                ) from None
            if code in unknown and "not found" in (details or "").lower():
                raise ModelNotServed(
                    f"the V2 server at {target} serves no model named {model_name!r} (gRPC ModelMetadata: "
                    f"{details}): check the model name (--model-name), or that this is the right server"
                ) from None
            raise DescriptionUnavailable(
                f"gRPC ModelMetadata at {target} failed ({code.name if code else 'error'}: {details}): is "
                f"this a V2 server's gRPC port, serving {service}?"
            ) from None
        metadata = pb2.ModelMetadataResponse.FromString(raw)
        document = {
            kind: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in tensors]
            for kind, tensors in (("inputs", metadata.inputs), ("outputs", metadata.outputs))
        }
        described = _v2_shape(document, f"grpc://{target} ModelMetadata", model_name)
        try:
            ready = pb2.ModelReadyResponse.FromString(
                ready_call(pb2.ModelReadyRequest(name=model_name).SerializeToString(), timeout=timeout_s)
            ).ready
        except grpc.RpcError as exc:
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise ModelNotReady(
                f"gRPC ModelReady at {target} failed for model {model_name!r}: {details}"
            ) from None
        if not ready:
            raise ModelNotReady(
                f"the V2 server at {target} serves model {model_name!r} but it is not ready (gRPC "
                "ModelReady: false): wait until it has loaded, or see the server's log"
            )
        return described
    finally:
        channel.close()


def v2_ready_problem(
    base_url: str, model_name: str, *, timeout_s: float = TIMEOUT_S,
    security: Security | None = None, credentials: Credentials | None = None,
) -> str | None:
    """None when a V2 server at `base_url` (its REST API) describes the model and says it is ready;
    else what is wrong, naming the URL: no such model, known but not ready, nothing answering.

    Both are asked: Triton's ready endpoint answers the same 400 for an unknown model as for one
    still loading, its metadata endpoint tells them apart.
    """
    try:
        _describe_v2(base_url.rstrip("/"), model_name, timeout_s, None, (security, credentials))
    except DiscoveryError as exc:
        return str(exc)
    return None


def _get_json(
    url: str, server: str, model_name: str, timeout_s: float,
    access: tuple[Security | None, Credentials | None] = (None, None),
) -> object:
    security, credentials = access
    if url.startswith("https://") and (security is None or not security.tls):
        security = Security(tls=True)  # the system's CAs
    api: Api = "management" if server == "torchserve" else "inference"
    try:
        with open_url(url, security=security, credentials=credentials, api=api,
                      timeout_s=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        text = _error_text(exc)
        if credentials is not None:
            text = credentials.redact(text)
        if is_refusal(exc.code, text):
            sent = credentials.describe() if credentials is not None and credentials.present else "none"
            raise AccessRefused(
                f"{server} at {url} refused the request (HTTP {exc.code}: {text}); credentials sent: {sent}: "
                + ("give TorchServe's key file (--torchserve-key-file), whose management key its management "
                   "API takes" if server == "torchserve" else "give the token or headers the server takes")
            ) from None
        if exc.code == 404:
            raise ModelNotServed(
                f"{server} at {url} serves no model named {model_name!r} (HTTP 404: {text}): "
                "check the model name (--model-name), or that this is the right server"
            ) from None
        raise DescriptionUnavailable(
            f"{server} at {url} answered HTTP {exc.code} ({text}): is this {server}'s "
            f"{'management' if server == 'torchserve' else 'REST'} API?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            raise DescriptionUnavailable(describe_tls_failure(reason, url)) from None
        raise DescriptionUnavailable(f"nothing answers at {url} ({reason})") from None
    try:
        return json.loads(body)
    except ValueError:
        raise DescriptionUnavailable(
            f"{url} did not answer JSON (got {body[:80]!r}): is this {server}'s description API?"
        ) from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read()[:_BODY_TEXT].decode("utf-8", errors="replace")
    except OSError:
        return exc.reason
    try:
        document = json.loads(raw)
    except ValueError:
        return raw.strip() or str(exc.reason)
    if isinstance(document, dict):
        return str(document.get("error") or document.get("message") or raw)
    return raw


def _last_dim(shape: object) -> int | None:
    """The last dimension of a TensorShapeProto as JSON ({"dim": [{"size": "-1"}, {"size": "8"}]})."""
    if not isinstance(shape, dict) or shape.get("unknown_rank"):
        return None
    dims = shape.get("dim") or []
    if not dims:
        return None
    size = int(dims[-1].get("size", -1))
    return size if size > 0 else None


def _tfserving_shape(document: object, url: str) -> tuple[int | None, int | None]:
    """(features, classes) from the serving_default signature: its one input, its scores output."""
    try:
        signatures = document["metadata"]["signature_def"]["signature_def"]  # type: ignore[index]
    except (KeyError, TypeError):
        raise DescriptionUnavailable(f"{url} is not a TF Serving model metadata document") from None
    signature = signatures.get(SIGNATURE)
    if not isinstance(signature, dict):
        raise DescriptionUnavailable(
            f"{url}: the model has no {SIGNATURE!r} signature (it has {sorted(signatures)}): "
            "export it with `inferload export`"
        )
    inputs = signature.get("inputs") or {}
    features = _last_dim(next(iter(inputs.values()))["tensor_shape"]) if len(inputs) == 1 else None
    outputs = signature.get("outputs") or {}
    scores = outputs.get("scores")
    classes = _last_dim(scores.get("tensor_shape")) if isinstance(scores, dict) else None
    return features, classes


def _torchserve_shape(document: object, url: str) -> tuple[int | None, int | None]:
    """(features, classes) from describe_handle's JSON in the newest described version."""
    versions = document if isinstance(document, list) else []
    if not versions or not isinstance(versions[0], dict):
        raise DescriptionUnavailable(f"{url} is not a TorchServe model description")
    custom = versions[-1].get("customizedMetadata")
    if not custom:
        return None, None
    try:
        described = json.loads(custom) if isinstance(custom, str) else custom
        return _positive(described.get("features")), _positive(described.get("classes"))
    except (ValueError, AttributeError):
        return None, None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None
