"""Is the target there, and does it serve what we will send? Checked before any load.

`preflight` first checks reachability (any answer counts), then asks the server to describe the
model (loadtest/_discovery.py): a typo'd port, a wrong model name or payloads of the wrong width
fail in a second with an error naming what to fix, instead of a run of 100 % errors.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from ._discovery import DescriptionUnavailable, DiscoveryError, ServedModel, describe_served_model
from ._settings import LoadSettings

CHECK_TIMEOUT_S = 3.0


class TargetError(RuntimeError):
    """The target cannot take this load; the message names what to fix."""


class TargetUnreachable(TargetError):
    """No server answers at the target address."""


class TargetMismatch(TargetError):
    """The server answers but serves another model, or the model takes another input width."""


def _hint(settings: LoadSettings) -> str:
    return (
        f"no {settings.server} {settings.protocol} server answers at {settings.target}: "
        "start the servers with `inferload serve up` (or `docker compose up`), "
        "or point --host/--port at a running one"
    )


def health_path(settings: LoadSettings) -> str:
    if settings.server == "tfserving":
        return f"/v1/models/{settings.model_name}"
    return "/ping"


def check_reachable(settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise TargetUnreachable (naming host:port) unless something answers there."""
    if settings.protocol == "grpc":
        import grpc

        channel = grpc.insecure_channel(settings.target)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise TargetUnreachable(_hint(settings)) from None
        finally:
            channel.close()
        return
    url = f"http://{settings.target}{health_path(settings)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if settings.server == "torchserve" and exc.code == 404:  # every TorchServe answers /ping
            raise TargetMismatch(
                f"something answers at {settings.target}, but not TorchServe's inference API (GET /ping: "
                "HTTP 404): point --host/--port at TorchServe's inference port (8080 by default)"
            ) from None
        return  # it answered: reachable (the model is checked next)
    except (urllib.error.URLError, OSError) as exc:
        raise TargetUnreachable(f"{_hint(settings)} ({exc})") from None


def check_served_model(settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S) -> ServedModel | None:
    """Raise TargetMismatch unless the server serves `model_name` with `features` inputs.

    Returns what the server described, or None when its description API is not known (TorchServe,
    or TF Serving gRPC, at non-standard ports without `metadata_url`): then nothing is checked.
    """
    url = settings.resolved_metadata_url
    if url is None:
        return None
    try:
        served = describe_served_model(settings.server, url, settings.model_name, timeout_s=timeout_s)
    except DescriptionUnavailable as exc:
        raise TargetUnreachable(
            f"cannot read the served model's description: {exc}; give the right metadata URL "
            "(TF Serving's REST API or TorchServe's management API)"
        ) from None
    except DiscoveryError as exc:
        raise TargetMismatch(str(exc)) from None
    if served.features is not None and served.features != settings.features:
        raise TargetMismatch(
            f"{settings.server} at {settings.target} serves model {settings.model_name!r} with "
            f"{served.features} input features, but the load would send {settings.features}: "
            f"set features to {served.features} (--features {served.features}), or point at the "
            "server that serves this model"
        )
    return served


def preflight(settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S) -> ServedModel | None:
    """Before any load: the target answers, serves the model, and takes inputs of this width."""
    check_reachable(settings, timeout_s)
    return check_served_model(settings, timeout_s)
