"""How many features per instance the Locust users send, and where that number came from.

`--features`, else `--artifacts`' model.json, else asked from the server (TF Serving's model metadata;
TorchServe's management API, `--metadata-url` or INFERLOAD_<SERVER>_METADATA_URL where it is not at the
standard port; a V2 server's own model metadata, over REST or gRPC, which also says its input's name and
datatype, checked too); the log says which. Where the server can be asked, a given count it contradicts, or a
model it does not serve, stops the run before load. Resolved once per target and test per process.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest._discovery import (
    AccessRefused,
    DiscoveryError,
    ModelNotReady,
    ModelNotServed,
    describe_served_model,
    served_features,
)
from loadtest._health import v2_tensor_problem
from loadtest._security import Credentials, Security
from loadtest._settings import metadata_url_for

logger = logging.getLogger("inferload")


@dataclass(frozen=True)
class FeatureCount:
    """Features per instance, and where that number came from (printed, so a user can tell)."""

    features: int
    source: str
    given: bool = True  # by the user (--features / --artifacts), not read from the server


def metadata_url(options: Any, server: str) -> str | None:
    """--metadata-url, else INFERLOAD_<SERVER>_METADATA_URL, else None (derived from the target)."""
    given = getattr(options, "metadata_url", "")
    return given or os.environ.get(f"INFERLOAD_{server.upper()}_METADATA_URL") or None


def grpc_service(options: Any, server: str) -> str | None:
    """--grpc-service, for the V2 (triton) classes only."""
    return (getattr(options, "grpc_service", "") or None) if server == "triton" else None


def resolve_features(
    options: Any, server: str, protocol: str, host: str, port: int | None, security: Security | None = None
) -> FeatureCount:
    """--features, else --artifacts' model.json, else ask the server (raises DiscoveryError).

    model.json is read for its `features` only: the Locust image carries loadtest/, not models/."""
    if getattr(options, "features", 0):
        return FeatureCount(int(options.features), "--features")
    artifacts = getattr(options, "artifacts", "")
    if artifacts:
        path = Path(artifacts) / "model.json"
        try:
            return FeatureCount(int(json.loads(path.read_text())["features"]), f"--artifacts ({path})")
        except (OSError, KeyError, ValueError) as exc:
            raise DiscoveryError(
                f"--artifacts {artifacts}: cannot read features from {path} ({exc})"
            ) from exc
    url = metadata_url(options, server)
    model_name = getattr(options, "model_name", "linear")
    try:
        features = served_features(
            server, host=host, port=port, protocol=protocol, model_name=model_name, metadata_url=url,
            security=security, credentials=Credentials.load(security),
            grpc_service=grpc_service(options, server),
        )
    except DiscoveryError as exc:
        raise DiscoveryError(
            f"{exc}. (Neither --features nor --artifacts was given, so the feature count was asked "
            "from the server; --metadata-url names where it describes its model.)"
        ) from exc
    tls = security is not None and security.tls
    described_at = url or metadata_url_for(server, protocol, host, port, tls=tls)
    source = f"the server's description of model {model_name!r} ({described_at})"
    return FeatureCount(features, source, given=False)


def check_against_server(
    options: Any, server: str, protocol: str, host: str, port: int | None, given: FeatureCount,
    security: Security | None = None,
) -> None:
    """A feature count given by the user must be the served model's, where the server can tell.

    Raises DiscoveryError (before any load) when the server serves no such model or another
    width; when its description API cannot be read, warns and leaves it to the fail-fast check.
    """
    tls = security is not None and security.tls
    url = metadata_url(options, server) or metadata_url_for(server, protocol, host, port, tls=tls)
    if url is None:
        return  # e.g. TorchServe at non-standard ports without --metadata-url: nothing to ask
    model_name = getattr(options, "model_name", "linear")
    try:
        served = describe_served_model(server, url, model_name, security=security,
                                       credentials=Credentials.load(security),
                                       grpc_service=grpc_service(options, server))
    except (ModelNotServed, ModelNotReady, AccessRefused):
        raise
    except DiscoveryError as exc:
        logger.warning("%s %s: cannot check %s against the server: %s", server, protocol, given.source, exc)
        return
    if served.features is not None and served.features != given.features:
        raise DiscoveryError(
            f"{server} at {served.source} serves model {model_name!r} with {served.features} input "
            f"features, but {given.source} gives {given.features}: use --features {served.features} "
            "(or leave it out: the server is asked), or point --host at the server that serves this model"
        )
    problem = v2_tensor_problem(served)
    if problem is not None:
        raise DiscoveryError(f"{server} at {host}: {problem}")


# Feature counts by target, per process and test: resolved once, the source printed once.
_feature_counts: dict[tuple[Any, ...], FeatureCount | DiscoveryError] = {}


def forget_feature_counts() -> None:
    """A new test (e.g. started again from the web UI after a fix) asks the servers afresh."""
    _feature_counts.clear()


def feature_count(
    options: Any, server: str, protocol: str, host: str, port: int | None, security: Security | None = None
) -> FeatureCount:
    """resolve_features, once per target and test in this process; raises DiscoveryError."""
    key = (
        server,
        protocol,
        host,
        port,
        getattr(options, "model_name", "linear"),
        getattr(options, "features", 0),
        getattr(options, "artifacts", ""),
        metadata_url(options, server),
        grpc_service(options, server),
    )
    if key not in _feature_counts:
        try:
            resolved = resolve_features(options, server, protocol, host, port, security)
            if resolved.given or server == "triton":  # a V2 server also says its input's name and datatype
                check_against_server(options, server, protocol, host, port, resolved, security)
        except DiscoveryError as exc:
            _feature_counts[key] = exc
        else:
            _feature_counts[key] = resolved
            message = "%s %s: %d features per instance, from %s"
            logger.info(message, server, protocol, resolved.features, resolved.source)
    found = _feature_counts[key]
    if isinstance(found, DiscoveryError):
        raise found
    return found
