"""What a server serves: the model's input width, read from the server's own description API.

Why ask the server: a load run whose payloads do not fit the served model sends nothing but errors,
and a typo'd model name does the same. Both servers can say what they serve, so the mismatch is
caught before the load starts:
- TF Serving: `GET /v1/models/<name>/metadata`, the `serving_default` signature's input shape.
- TorchServe: `GET <management>/models/<name>?customized=true`, which runs our handler's
  `describe_handle` (models/torchserve_handler.py) and returns its JSON as `customizedMetadata`.
Plain HTTP with the standard library: no TensorFlow, no protobuf, so load processes stay light.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
from dataclasses import dataclass
from urllib.parse import quote

from ._security import (
    AUTH_REFUSED_HTTP_CODES,
    TORCHSERVE_REFUSAL,
    Api,
    Credentials,
    Security,
    describe_tls_failure,
    open_url,
)
from ._settings import metadata_url_for

__all__ = [
    "AccessRefused",
    "DescriptionUnavailable",
    "DiscoveryError",
    "ModelNotServed",
    "ServedModel",
    "describe_served_model",
    "served_features",
]

TIMEOUT_S = 5.0
SIGNATURE = "serving_default"
_BODY_TEXT = 300


class DiscoveryError(RuntimeError):
    """The served model could not be described; the message says where it asked and what to fix."""


class DescriptionUnavailable(DiscoveryError):
    """Nothing (or something else) answered at the description API."""


class ModelNotServed(DiscoveryError):
    """The server answers, but serves no model of that name."""


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
                                      credentials=credentials)
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
) -> ServedModel:
    """Ask `server` at `metadata_url` (no path) what `model_name` is; raises DiscoveryError.

    `security`/`credentials`: TLS for an https:// URL, and the headers to send (TorchServe's
    management key for its management API)."""
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
    else:
        raise ValueError(f"unknown server {server!r}: expected tfserving or torchserve")
    return ServedModel(server, model_name, features, classes, url)


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
            f"{'REST' if server == 'tfserving' else 'management'} API?"
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
