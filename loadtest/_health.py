"""Is the target there, and does it serve what we will send? Checked before any load.

`preflight` first checks reachability (any answer counts), then asks the server to describe the
model (loadtest/_discovery.py): a typo'd port, a wrong model name or payloads of the wrong width
fail in a second with an error naming what to fix, instead of a run of 100 % errors.
"""

from __future__ import annotations

import ssl
import urllib.error
from typing import Any

from . import _oip
from ._discovery import (
    AccessRefused,
    DescriptionUnavailable,
    DiscoveryError,
    ServedModel,
    describe_served_model,
    is_refusal,
)
from ._security import (
    AUTH_REFUSED_GRPC_CODES,
    CredentialError,
    Credentials,
    check_tls,
    describe_tls_failure,
    grpc_channel_options,
    grpc_credentials,
    open_url,
    speaks_tls,
)
from ._settings import LoadSettings

CHECK_TIMEOUT_S = 3.0
# A probe that timed out is asked again: under 5 % packet loss a lost SYN and SYN-ACK (retransmitted
# after 1 s, then 2 s more) outlast the 3 s timeout (tests/faults/test_packet_loss.py failed this way in
# a clean-clone suite run, 2026-12-06). A refused connection is not retried: nothing listens there.
REACH_ATTEMPTS = 3
PLAIN_TO_TLS = "plain HTTP request was sent to HTTPS port"  # nginx's 400 for http:// to a TLS port
# nginx's 400s when it requires a client certificate (ssl_verify_client on) and gets none, or a bad one
NO_CLIENT_CERTIFICATE = "No required SSL certificate was sent"
BAD_CLIENT_CERTIFICATE = "The SSL certificate error"


class TargetError(RuntimeError):
    """The target cannot take this load; the message names what to fix."""


class TargetUnreachable(TargetError):
    """No server answers at the target address."""


class TargetTimedOut(TargetUnreachable):
    """The reachability probe timed out (nothing refused it): on a lossy network a probe can be lost,
    so `preflight` asks again before giving up."""


class TargetMismatch(TargetError):
    """The server answers but serves another model, or the model takes another input width."""


class TargetTlsError(TargetError):
    """TLS with the target failed (unknown CA, wrong name, expired, TLS to a plaintext port, ...)."""


class TargetRefused(TargetError):
    """The target refused our credentials (HTTP 401/403, gRPC PERMISSION_DENIED/UNAUTHENTICATED)."""


def _tls_instead(settings: LoadSettings) -> str:
    scheme = "grpcs" if settings.protocol == "grpc" else "https"
    return (f"{settings.url} speaks TLS, but the load would be plaintext: use {scheme}://{settings.target} "
            "(and --ca-cert if its CA is not a system one)")


def _refused(settings: LoadSettings, credentials: Credentials, what: str) -> TargetRefused:
    if credentials.present:
        return TargetRefused(
            f"{settings.url} refused our credentials before any load ({what}); sent: "
            f"{credentials.describe()}: check the token or key (a TorchServe key file is rewritten at "
            "each start), or whether it has expired"
        )
    return TargetRefused(
        f"{settings.url} requires credentials ({what}) and none were given: pass a bearer token "
        "(--token env:VAR or file:PATH), TorchServe's key file (--torchserve-key-file), or headers "
        "(--header NAME=env:VAR)"
    )


def _hint(settings: LoadSettings) -> str:
    return (
        f"no {settings.server} {settings.protocol} server answers at {settings.target}: "
        "start the servers with `inferload serve up` (or `docker compose up`), "
        "or point --host/--port at a running one"
    )


def health_path(settings: LoadSettings) -> str:
    if settings.server == "tfserving":
        return f"/v1/models/{settings.model_name}"
    if settings.server == "triton":
        return _oip.SERVER_READY_PATH
    return "/ping"


def check_reachable(
    settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S, credentials: Credentials | None = None
) -> None:
    """Raise TargetUnreachable (naming host:port) unless something answers there; TargetTlsError
    when TLS fails (naming the host and the verification error) or one side speaks TLS and the
    other does not; TargetRefused when it refuses our credentials (or wants some)."""
    credentials = credentials if credentials is not None else _credentials(settings)
    security = settings.security
    if security.tls:
        try:
            check_tls(settings.host, settings.resolved_port, security, grpc=settings.protocol == "grpc",
                      timeout_s=timeout_s)
        except ssl.SSLError as exc:
            raise TargetTlsError(describe_tls_failure(exc, settings.url)) from None
        except TimeoutError:
            pass  # the handshake passed; the server just said nothing yet
        except OSError as exc:
            raise TargetUnreachable(f"{_hint(settings)} ({exc})") from None
    if settings.protocol == "grpc":
        import grpc

        channel = _channel(settings)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            if not security.tls and speaks_tls(settings.host, settings.resolved_port, timeout_s):
                raise TargetTlsError(_tls_instead(settings)) from None
            raise TargetUnreachable(_hint(settings)) from None
        finally:
            channel.close()
        return
    scheme = "https" if security.tls else "http"
    url = f"{scheme}://{settings.target}{health_path(settings)}"
    try:
        with open_url(url, security=security, credentials=credentials, timeout_s=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read()[:300].decode("utf-8", "replace")
        if PLAIN_TO_TLS in text:
            raise TargetTlsError(_tls_instead(settings)) from None
        if NO_CLIENT_CERTIFICATE in text or BAD_CLIENT_CERTIFICATE in text:
            why = "certificate required" if NO_CLIENT_CERTIFICATE in text else "bad certificate"
            raise TargetTlsError(describe_tls_failure(ssl.SSLError(f"HTTP {exc.code}: {why}"),
                                                      settings.url)) from None
        if is_refusal(exc.code, text):
            if not security.tls and speaks_tls(settings.host, settings.resolved_port, timeout_s):
                raise TargetTlsError(_tls_instead(settings)) from None  # a TLS port refusing plaintext
            said = " ".join(credentials.redact(text).split())[:200]
            what = f"GET {health_path(settings)}: HTTP {exc.code}" + (f": {said}" if said else "")
            raise _refused(settings, credentials, what) from None
        if settings.server == "torchserve" and exc.code == 404:  # every TorchServe answers /ping
            raise TargetMismatch(
                f"something answers at {settings.target}, but not TorchServe's inference API (GET /ping: "
                "HTTP 404): point --host/--port at TorchServe's inference port (8080 by default)"
            ) from None
        return  # it answered: reachable (the model is checked next)
    except (urllib.error.URLError, OSError) as exc:
        reason: object = getattr(exc, "reason", None) or exc
        if isinstance(reason, ssl.SSLError):
            raise TargetTlsError(describe_tls_failure(reason, settings.url)) from None
        if not security.tls and speaks_tls(settings.host, settings.resolved_port, timeout_s):
            raise TargetTlsError(_tls_instead(settings)) from None
        unreachable = TargetTimedOut if isinstance(reason, TimeoutError) else TargetUnreachable
        raise unreachable(f"{_hint(settings)} ({exc})") from None


def _channel(settings: LoadSettings) -> Any:
    """A gRPC channel to the target: over TLS (its CA, client certificate, server name) when asked."""
    import grpc

    security = settings.security
    if security.tls:
        return grpc.secure_channel(settings.target, grpc_credentials(security),
                                   options=grpc_channel_options(security))
    return grpc.insecure_channel(settings.target)


def _credentials(settings: LoadSettings) -> Credentials:
    try:
        return Credentials.load(settings.security)
    except CredentialError as exc:
        raise TargetRefused(f"cannot read the credentials for {settings.url}: {exc}") from None


def check_credentials(
    settings: LoadSettings, credentials: Credentials, timeout_s: float = CHECK_TIMEOUT_S
) -> None:
    """With credentials given: one request to the inference API with an empty body. A refusal (HTTP
    401/403, TorchServe's token message, gRPC PERMISSION_DENIED/UNAUTHENTICATED) ends the run before
    the load, naming it; any other answer (the empty body is a bad request) means they were taken."""
    if not credentials.present:
        return
    if settings.protocol == "grpc":
        import grpc

        from ._spec import grpc_method

        channel = _channel(settings)
        try:
            method = grpc_method(settings.server, settings.grpc_service)
            call = channel.unary_unary(method, request_serializer=None,
                                       response_deserializer=None)
            call(b"", timeout=timeout_s, metadata=credentials.grpc_metadata())
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code is not None and code.value[0] in AUTH_REFUSED_GRPC_CODES:
                details = credentials.redact(str(exc.details()))  # type: ignore[attr-defined]
                raise _refused(settings, credentials, f"gRPC {code.name}: {details}") from None
        finally:
            channel.close()
        return
    from ._payloads import CONTENT_TYPES
    from ._spec import rest_path

    scheme = "https" if settings.security.tls else "http"
    path = rest_path(settings.server, settings.model_name)
    try:
        content_type = CONTENT_TYPES[(settings.server, settings.protocol)]
        with open_url(f"{scheme}://{settings.target}{path}", security=settings.security,
                      credentials=credentials, timeout_s=timeout_s, data=b"",
                      headers={"Content-Type": content_type}) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        text = credentials.redact(exc.read()[:300].decode("utf-8", "replace"))
        if is_refusal(exc.code, text):
            raise _refused(settings, credentials, f"POST {path}: HTTP {exc.code}: {' '.join(text.split())}") \
                from None
    except (urllib.error.URLError, OSError):
        pass  # reachability was checked: the load's own records will say what goes wrong


def check_served_model(settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S) -> ServedModel | None:
    """Raise TargetMismatch unless the server serves `model_name` with `features` inputs.

    Returns what the server described, or None when its description API is not known (TorchServe,
    or TF Serving gRPC, at non-standard ports without `metadata_url`): then nothing is checked. A V2
    server must also call the model's input `x` of datatype FP32 and say it is ready.
    """
    url = settings.resolved_metadata_url
    if url is None:
        return None
    try:
        served = describe_served_model(settings.server, url, settings.model_name, timeout_s=timeout_s,
                                       security=settings.security, credentials=_credentials(settings),
                                       grpc_service=settings.grpc_service)
    except AccessRefused as exc:
        raise TargetRefused(str(exc)) from None
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
    v2_problem = v2_tensor_problem(served)
    if v2_problem is not None:
        raise TargetMismatch(f"{settings.server} at {settings.target}: {v2_problem}")
    return served


def v2_tensor_problem(served: ServedModel) -> str | None:
    """Why a V2 server's model cannot take inferload's bodies (another input name or datatype), or None."""
    if served.server != "triton":
        return None
    if served.input_name is not None and served.input_name != _oip.INPUT_NAME:
        return (
            f"model {served.model_name!r} ({served.source}) takes an input named {served.input_name!r}; "
            f"inferload sends {_oip.INPUT_NAME!r}: serve the model exported by `inferload export` "
            "(artifacts/triton)"
        )
    if served.datatype is not None and served.datatype != _oip.DATATYPE:
        return (
            f"model {served.model_name!r} ({served.source}) takes {served.datatype} input; inferload sends "
            f"{_oip.DATATYPE}: serve the model exported by `inferload export` (artifacts/triton)"
        )
    return None


def preflight(settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S) -> ServedModel | None:
    """Before any load: the target answers (over TLS when asked, verified), takes our credentials,
    serves the model, and takes inputs of this width."""
    credentials = _credentials(settings)
    try:
        for attempt in range(1, REACH_ATTEMPTS + 1):
            try:
                check_reachable(settings, timeout_s, credentials)
                break
            except TargetTimedOut:
                if attempt == REACH_ATTEMPTS:
                    raise
        served = check_served_model(settings, timeout_s)
        check_credentials(settings, credentials, timeout_s)
    except CredentialError as exc:  # a TLS file that cannot be read
        raise TargetTlsError(f"{settings.url}: {exc}") from None
    return served
