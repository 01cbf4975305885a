"""TLS and credentials for a load target: one typed settings object, and what every sender builds from it.

Why one object: the HTTP sender (geventhttpclient), the gRPC senders (grpcio blocking under Locust,
grpc.aio in the load worker), the checks before the load (urllib) and the description APIs all talk
to the same secured target. `Security` says *where* the material is (file paths, environment variable
names), never the secrets themselves, so it can travel to worker processes and hosts and be echoed
into results. Each process reads the secrets once (`Credentials.load`) and builds its TLS context
(`ssl_context`) or gRPC channel credentials (`grpc_credentials`) once; headers and metadata are data.

What a results file ever says about a credential: where it was to come from, whether it was there,
and a short fingerprint (`sha256:` + 8 hex digits of a SHA-256 of the value), never the value. Error
texts that reach records pass through `Credentials.redact`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AUTH_REFUSED_GRPC_CODES",
    "AUTH_REFUSED_HTTP_CODES",
    "CredentialError",
    "Credentials",
    "Header",
    "SecretSource",
    "Security",
    "describe_tls_failure",
    "fingerprint",
    "grpc_channel_options",
    "grpc_credentials",
    "open_url",
    "parse_secret_reference",
    "speaks_tls",
    "ssl_context",
]

Api = Literal["inference", "management"]
AUTH_REFUSED_HTTP_CODES = (401, 403)
AUTH_REFUSED_GRPC_CODES = (7, 16)  # PERMISSION_DENIED (TorchServe's refusal), UNAUTHENTICATED
# TorchServe 0.12 answers a REST request with a wrong or missing key with this text (its status is
# not 401): recognised so that its refusal is named like everyone else's.
TORCHSERVE_REFUSAL = "Token Authorization failed"
REDACTED = "[redacted]"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CredentialError(ValueError):
    """A credential or TLS file cannot be read; the message names the variable or file, never a value."""


def fingerprint(value: str) -> str:
    """A short, stable name for a secret: enough to tell two apart, far too short to recover it."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:8]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(_Strict):
    """Where one secret is read: an environment variable or a file (its content, stripped)."""

    env: str | None = Field(default=None, description="environment variable holding the value")
    file: str | None = Field(default=None, description="file holding the value (whitespace stripped)")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret comes from exactly one place: `env: VARIABLE` or `file: PATH`")
        if self.env is not None and not _ENV_NAME.match(self.env):
            raise ValueError(f"env {self.env!r} is not an environment variable name (letters, digits, _)")
        return self

    @property
    def origin(self) -> str:
        return f"env {self.env}" if self.env is not None else f"file {self.file}"

    def read(self) -> str:
        """The value; CredentialError naming the variable or file when it is missing or empty."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise CredentialError(f"environment variable {self.env} is not set: export it with the "
                                      "secret")
        else:
            assert self.file is not None
            try:
                value = Path(self.file).read_text(encoding="utf-8")
            except OSError as exc:
                reason = exc.strerror or exc
                raise CredentialError(f"cannot read the secret file {self.file}: {reason}") from None
        value = value.strip()
        if not value:
            raise CredentialError(f"{self.origin} is empty: it must hold the secret")
        return value


def parse_secret_reference(text: str, *, what: str) -> SecretSource:
    """`env:NAME` or `file:PATH` (as flags take them) -> SecretSource; a bare value is refused, because
    a secret given as a flag value shows in `ps` and in shell history."""
    kind, sep, rest = text.partition(":")
    if sep and kind == "env" and rest:
        return SecretSource(env=rest)
    if sep and kind == "file" and rest:
        return SecretSource(file=rest)
    raise ValueError(
        f"{what}: give where the secret is, `env:VARIABLE` or `file:PATH`, not the secret itself "
        "(a value on the command line shows in `ps` and in shell history)"
    )


class Header(_Strict):
    """One header sent with every REST request and as gRPC metadata (its name lower-cased)."""

    name: str
    value: SecretSource

    @field_validator("name")
    @classmethod
    def _a_header_name(cls, name: str) -> str:
        if not _HEADER_NAME.match(name):
            raise ValueError(f"header name {name!r} is not an HTTP header name (letters, digits, '-')")
        if name.lower() in ("content-type", "content-length", "host", "connection", "te"):
            raise ValueError(f"header {name!r} is set by inferload itself: it cannot be given")
        return name


class Security(_Strict):
    """TLS and credentials for one target. Paths and variable names only: no secret is held here."""

    tls: bool = Field(default=False, description="https:// and gRPC over TLS")
    ca_cert: str | None = Field(default=None, description="PEM file of the CA(s) to trust; None: the "
                                                          "system's")
    client_cert: str | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    client_key: str | None = Field(default=None, description="PEM key of client_cert")
    server_name: str | None = Field(
        default=None, description="the name to verify in the server's certificate (and send as SNI), "
        "when it differs from the host connected to"
    )
    token: SecretSource | None = Field(
        default=None, description="bearer token: `Authorization: Bearer …` (REST) and `authorization` "
                                  "metadata"
    )
    torchserve_key_file: str | None = Field(
        default=None, description="TorchServe's key_file.json: its inference key for requests, its "
        "management key for the management API"
    )
    headers: tuple[Header, ...] = Field(default=(), description="more headers (REST) / metadata (gRPC)")

    @model_validator(mode="after")
    def _consistent(self) -> Security:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both client_cert and client_key (or neither)")
        if not self.tls and (self.ca_cert or self.client_cert or self.server_name):
            raise ValueError(
                "ca_cert, client_cert and server_name are TLS settings: the target is plaintext; "
                "use an https:// (REST) or grpcs:// (gRPC) host, or set tls"
            )
        if self.token is not None and self.torchserve_key_file is not None:
            raise ValueError("give either a token or TorchServe's key file (it holds the tokens), not both")
        names = [header.name.lower() for header in self.headers]
        if len(set(names)) != len(names):
            raise ValueError(f"a header is given twice: {', '.join(h.name for h in self.headers)}")
        if "authorization" in names and (self.token is not None or self.torchserve_key_file is not None):
            raise ValueError("the Authorization header comes from the token (or key file): do not give "
                             "it twice")
        return self

    @property
    def has_credentials(self) -> bool:
        return self.token is not None or self.torchserve_key_file is not None or bool(self.headers)

    @property
    def plain(self) -> bool:
        return not self.tls and not self.has_credentials

    def describe(self) -> dict[str, Any]:
        """What results may say: TLS files and names, and each credential's origin, presence and
        fingerprint (never a value). Reads the secrets: a missing one shows as `present: false`."""
        data: dict[str, Any] = {"tls": self.tls}
        if self.tls:
            data.update(ca_cert=self.ca_cert, client_cert=self.client_cert, server_name=self.server_name)
        credentials = []
        for name, source in self._sources():
            entry: dict[str, Any] = {"header": name, "from": source.origin}
            try:
                value = source.read()
            except CredentialError:
                entry.update(present=False, fingerprint=None)
            else:
                entry.update(present=True, fingerprint=fingerprint(value))
            credentials.append(entry)
        if self.torchserve_key_file is not None:
            for api in ("inference", "management"):
                entry = {"header": "Authorization", "from": f"{api} key of {self.torchserve_key_file}"}
                try:
                    key = read_torchserve_key(self.torchserve_key_file, api)  # type: ignore[arg-type]
                except CredentialError:
                    entry.update(present=False, fingerprint=None)
                else:
                    entry.update(present=True, fingerprint=fingerprint(key))
                credentials.append(entry)
        data["credentials"] = credentials
        return data

    def _sources(self) -> list[tuple[str, SecretSource]]:
        found = [("Authorization", self.token)] if self.token is not None else []
        return found + [(header.name, header.value) for header in self.headers]


def read_torchserve_key(path: str, api: Api) -> str:
    """The `api` key of TorchServe's key_file.json (`{"inference": {"key": …}, "management": …}`)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialError(f"cannot read TorchServe's key file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise CredentialError(f"TorchServe's key file {path} is not JSON") from None
    try:
        key = document[api]["key"]
    except (KeyError, TypeError):
        raise CredentialError(
            f"TorchServe's key file {path} has no {api} key (expected {{\"{api}\": {{\"key\": …}}}}): is it "
            "the key_file.json TorchServe wrote in its working directory?"
        ) from None
    if not isinstance(key, str) or not key:
        raise CredentialError(f"TorchServe's key file {path}: the {api} key is empty")
    return key


@dataclass(frozen=True)
class Credentials:
    """The secrets of a `Security`, read once in this process: headers and metadata as data."""

    inference_headers: tuple[tuple[str, str], ...] = ()
    management_headers: tuple[tuple[str, str], ...] = ()
    origins: tuple[str, ...] = ()  # where each came from, for messages

    @classmethod
    def load(cls, security: Security | None) -> Credentials:
        """Read every secret now; CredentialError naming the variable or file that is missing."""
        if security is None or not security.has_credentials:
            return cls()
        common = []
        origins = []
        for name, source in security._sources():
            value = source.read()
            common.append((name, f"Bearer {value}" if name == "Authorization" else value))
            origins.append(f"{name} from {source.origin} ({fingerprint(value)})")
        inference, management = list(common), list(common)
        if security.torchserve_key_file is not None:
            path = security.torchserve_key_file
            inference_key = read_torchserve_key(path, "inference")
            management_key = read_torchserve_key(path, "management")
            inference.insert(0, ("Authorization", f"Bearer {inference_key}"))
            management.insert(0, ("Authorization", f"Bearer {management_key}"))
            origins.append(f"TorchServe's keys from {path} (inference {fingerprint(inference_key)}, "
                           f"management {fingerprint(management_key)})")
        return cls(tuple(inference), tuple(management), tuple(origins))

    def headers(self, api: Api = "inference") -> dict[str, str]:
        return dict(self.inference_headers if api == "inference" else self.management_headers)

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        """The inference headers as gRPC metadata (keys lower-case, as gRPC requires)."""
        return tuple((name.lower(), value) for name, value in self.inference_headers)

    @property
    def present(self) -> bool:
        return bool(self.inference_headers)

    def describe(self) -> str:
        return "; ".join(self.origins) if self.origins else "no credentials"

    def redact(self, text: str) -> str:
        """`text` with every secret value (and its Bearer form) replaced: server error texts go into
        records, and a server may echo what it was sent."""
        for _, value in (*self.inference_headers, *self.management_headers):
            for secret in (value, value.removeprefix("Bearer ")):
                if len(secret) >= 4 and secret in text:
                    text = text.replace(secret, REDACTED)
        return text


def ssl_context(security: Security, *, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A verifying client context: the CA file (else the system's), the client certificate for
    mutual TLS. Built in the calling process (gevent's SSLContext where gevent patched `ssl`)."""
    for what, path in (("CA certificate", security.ca_cert), ("client certificate", security.client_cert),
                       ("client key", security.client_key)):
        if path is not None and not Path(path).is_file():
            raise CredentialError(f"the {what} {path} does not exist: give an existing PEM file")
    try:
        context = ssl.create_default_context(cafile=security.ca_cert)
        if security.client_cert is not None:
            context.load_cert_chain(security.client_cert, security.client_key)
    except (ssl.SSLError, OSError) as exc:
        which = f"{security.ca_cert or ''} {security.client_cert or ''} {security.client_key or ''}".strip()
        raise CredentialError(f"cannot load the TLS files ({which}): {exc}") from None
    context.set_alpn_protocols(list(alpn))
    return context


def _read_pem(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CredentialError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def grpc_credentials(security: Security) -> Any:
    """grpc.ChannelCredentials for a TLS channel (the CA, the client certificate for mutual TLS)."""
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem(security.ca_cert, "CA certificate"),
        private_key=_read_pem(security.client_key, "client key"),
        certificate_chain=_read_pem(security.client_cert, "client certificate"),
    )


def grpc_channel_options(security: Security) -> list[tuple[str, Any]]:
    """Channel options for the server-name override (the name verified and sent as SNI)."""
    if security.tls and security.server_name:
        return [("grpc.ssl_target_name_override", security.server_name)]
    return []


class _NamedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler, verifying `server_name` instead of the URL's host when one is given."""

    def __init__(self, context: ssl.SSLContext, server_name: str | None) -> None:
        super().__init__(context=context)
        self._context_ = context
        self._server_name = server_name

    def https_open(self, req: urllib.request.Request) -> Any:
        server_name = self._server_name

        class Connection(http.client.HTTPSConnection):
            def connect(self) -> None:
                http.client.HTTPConnection.connect(self)
                self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
                    self.sock, server_hostname=server_name or self.host
                )

        return self.do_open(Connection, req, context=self._context_)


def open_url(
    url: str,
    *,
    security: Security | None,
    credentials: Credentials | None = None,
    api: Api = "inference",
    timeout_s: float,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """urllib.request.urlopen with the target's TLS context and credentials (same errors as urlopen)."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if credentials is not None:
        for name, value in credentials.headers(api).items():
            request.add_header(name, value)
    if url.startswith("https://"):
        assert security is not None and security.tls, "an https:// URL needs TLS settings"
        opener = urllib.request.build_opener(_NamedHTTPSHandler(ssl_context(security), security.server_name))
        return opener.open(request, timeout=timeout_s)
    return urllib.request.urlopen(request, timeout=timeout_s)


_VERIFY_HINTS = {
    "unable to get local issuer certificate": "unknown CA: the server's certificate is not signed by a CA "
    "you trust: give the CA's certificate (--ca-cert / ca_cert)",
    "self-signed certificate": "unknown CA: a self-signed certificate: give it as the CA (--ca-cert / "
                               "ca_cert)",
    "self signed certificate": "unknown CA: a self-signed certificate: give it as the CA (--ca-cert / "
                               "ca_cert)",
    "certificate has expired": "the server's certificate has expired: renew it on the server",
    "certificate is not yet valid": "the server's certificate is not valid yet: check the clocks",
    "Hostname mismatch": "wrong name: the certificate does not name the host you connect to: connect by a "
    "name it holds, or give that name (--server-name / server_name)",
    "IP address mismatch": "wrong name: the certificate does not name this IP address: connect by a name it "
    "holds, or give that name (--server-name / server_name)",
}


def describe_tls_failure(exc: BaseException, where: str) -> str:
    """One sentence naming the host and the verification error, and what to do about it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or str(exc)
        hint = next((h for key, h in _VERIFY_HINTS.items() if key in message), "check the server's "
                                                                               "certificate")
        return f"TLS verification of {where} failed: {message} ({hint})"
    args: tuple[Any, ...] = getattr(exc, "args", ())
    text = args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text or "record layer failure" in text:
        return (f"{where} does not speak TLS (the handshake got a plaintext answer: {text}): use http:// or "
                "grpc:// for it, or point at its TLS port")
    if "CERTIFICATE_REQUIRED" in text or "certificate required" in text:
        return (f"{where} requires a client certificate (mutual TLS) and refused the connection "
                f"({text}): give "
                "--client-cert and --client-key (client_cert / client_key)")
    if "UNKNOWN_CA" in text or "unknown ca" in text or "BAD_CERTIFICATE" in text or "bad certificate" in text:
        return (f"{where} refused our client certificate ({text}): it is not signed by a CA that server "
                "trusts")
    return f"TLS with {where} failed: {text}"


def speaks_tls(host: str, port: int, timeout_s: float = 3.0) -> bool:
    """Whether host:port answers a TLS handshake at all (certificates not checked): how a plaintext
    request that found a TLS port is recognised."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname=None):
                return True
    except ssl.SSLError as exc:
        text = str(exc)
        # an alert is TLS speaking (e.g. a client certificate it wants); a garbled record is not
        return "WRONG_VERSION_NUMBER" not in text and "record layer failure" not in text \
            and "UNEXPECTED_EOF" not in text
    except OSError:
        return False


# HTTP/2's client preface, then an empty SETTINGS frame
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def check_tls(host: str, port: int, security: Security, *, grpc: bool, timeout_s: float) -> None:
    """A verifying handshake with the real context, then one exchange (a mutual-TLS server refuses a
    missing client certificate only after the TLS 1.3 handshake). Raises ssl.SSLError / OSError."""
    context = ssl_context(security, alpn=("h2",) if grpc else ("http/1.1",))
    name = security.server_name or host
    with socket.create_connection((host, port), timeout=timeout_s) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            if grpc:
                tls.sendall(_H2_PREFACE)
            else:
                tls.sendall(f"HEAD / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            if not tls.recv(1):  # the server's first bytes (SETTINGS, a status line), or an alert
                # closed without a word right after the handshake: how gRPC servers refuse a
                # connection whose client certificate they require but did not get (or reject)
                reason = "bad certificate" if security.client_cert else "CERTIFICATE_REQUIRED"
                raise ssl.SSLError(f"{reason}: the server closed the connection right after the handshake")


REFUSALS_IN_A_ROW = 5


def is_refused(protocol: str, status: str, code: int, error: str | None) -> bool:
    """A record whose request the target refused for its credentials: HTTP 401/403, TorchServe's
    token message (HTTP 400 in 0.12), gRPC PERMISSION_DENIED/UNAUTHENTICATED."""
    if status != "error":
        return False
    if protocol == "grpc":
        return code in AUTH_REFUSED_GRPC_CODES
    return code in AUTH_REFUSED_HTTP_CODES or (code == 400 and TORCHSERVE_REFUSAL in (error or ""))


class RefusalWatch:
    """Mid-run fail-fast: credentials that worked at the start are refused later (a key rotated by a
    server restart, a token expired). `limit` refusals in a row (no success between) end the run;
    `add` returns the reason once, then None. The records up to then are kept."""

    def __init__(self, target: str, limit: int = REFUSALS_IN_A_ROW) -> None:
        self.target = target
        self.limit = limit
        self.in_a_row = 0
        self.tripped = False

    def add(self, protocol: str, status: str, code: int, error: str | None) -> str | None:
        if self.tripped or status == "dropped":
            return None
        if not is_refused(protocol, status, code, error):
            self.in_a_row = 0
            return None
        self.in_a_row += 1
        if self.in_a_row < self.limit:
            return None
        self.tripped = True
        what = f"gRPC status {code}" if protocol == "grpc" else f"HTTP {code}"
        return (f"{self.target} refused our credentials mid-run ({self.limit} requests in a row: {what}: "
                f"{' '.join((error or '').split())[:200]}): the run stopped; the records up to then are "
                "kept. Check whether the token expired or the server's keys changed (TorchServe writes new "
                "keys at each start)")


def security_fields(
    *,
    host: str,
    tls: bool = False,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    server_name: str | None = None,
    token: str | None = None,
    torchserve_key_file: str | None = None,
    headers: list[str] | tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Command-line flags (`inferload load`, the Locust users) as `Security` fields, None when none is
    given. `token` and each `headers` entry (`NAME=env:VAR` / `NAME=file:PATH`) name where a secret is;
    a bare value is refused (ValueError). TLS files with a host that has no scheme mean TLS."""
    values: dict[str, Any] = {}
    if tls:
        values["tls"] = True
    given = {"ca_cert": ca_cert, "client_cert": client_cert, "client_key": client_key,
             "server_name": server_name, "torchserve_key_file": torchserve_key_file}
    values.update({key: value for key, value in given.items() if value})
    if (ca_cert or client_cert or server_name) and "://" not in host:
        values["tls"] = True
    if token:
        values["token"] = parse_secret_reference(token, what="--token").model_dump()
    parsed = []
    for text in headers:
        name, sep, reference = text.partition("=")
        if not sep or not name:
            raise ValueError(f"--header {text.split('=')[0]!r}: expected NAME=env:VAR or NAME=file:PATH")
        parsed.append({"name": name.strip(), "value": parse_secret_reference(reference.strip(),
                                                                          what=f"--header {name}")})
    if parsed:
        values["headers"] = parsed
    return values or None
