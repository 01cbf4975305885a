"""The gevent engine's senders (Locust users), with one interface: `send(body) -> Outcome`.

Why this shape: the engine only times calls and records outcomes, so every failure (HTTP error,
gRPC status, timeout, connection reset) must come back as a value, never as an exception that
would end the run. HTTP uses geventhttpclient (a kept-alive pool sized for the in-flight bound);
gRPC uses grpcio with raw bytes in and out (identity serializers), its blocking calls made
cooperative by `grpc.experimental.gevent.init_gevent()` (Locust's full monkey-patching). What
they send comes from a `_spec.TransportSpec` (`make_transport`), as for the asyncio engine's
senders (`_aio_transports.py`, `_h2grpc.py`: `inferload load` workers); `Outcome` and the failure
texts here are shared by both.
"""

from __future__ import annotations

import errno
import functools
import select
import socket
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ._security import Credentials, Security, grpc_channel_options, grpc_credentials, ssl_context

if TYPE_CHECKING:
    from ._settings import LoadSettings

_ERROR_TEXT = 300
_HEAD_CACHE = 64  # distinct body lengths whose request head is kept




class Outcome(NamedTuple):
    status: str  # "ok" | "error" | "timeout"
    code: int  # HTTP status or gRPC status code, 0 if none
    bytes_in: int
    error: str | None
    cache: str = "none"  # "hit" | "miss": a cache in front answered (its X-Cache-Status); "none": no cache
    # when the request really started, for a transport that hands it to a thread of its own (0: when
    # the engine called send): the hand-off's delay is the generator's, so it must count as lateness
    sent_ns: int = 0


CACHE_HEADER = "X-Cache-Status"


def cache_status(header: str | list[str] | None) -> str:
    """nginx's $upstream_cache_status as a record's `cache`: HIT is a hit, any other status a miss."""
    if isinstance(header, list):
        header = header[0] if header else None
    if not header:
        return "none"
    return "hit" if header.strip().upper() == "HIT" else "miss"


class Transport(Protocol):
    def send(self, body: bytes) -> Outcome: ...

    def prime(self) -> None:
        """Connect (and resolve the address) before the schedule starts, sending no request."""

    def close(self) -> None: ...


def describe_failure(exc: BaseException) -> str:
    """A failure's record text: its type and message, cut to the record's error length."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:_ERROR_TEXT]




def grpc_outcome(grpc: Any, exc: BaseException, redact: Any = str) -> Outcome:
    """A failed gRPC call as a record: its status code and name with the details (deadline: timeout);
    `redact` takes the credentials out of the text (a server may echo them)."""
    if isinstance(exc, grpc.RpcError):
        status = exc.code() if hasattr(exc, "code") else None
        code = int(status.value[0]) if status is not None else 0
        details = exc.details() if hasattr(exc, "details") else str(exc)
        kind = "timeout" if status == grpc.StatusCode.DEADLINE_EXCEEDED else "error"
        name = status.name if status is not None else "UNKNOWN"
        return Outcome(kind, code, 0, redact(f"{name}: {details}"[:_ERROR_TEXT]))
    return Outcome("error", 0, 0, redact(describe_failure(exc)))


def _send_parts(sock: Any, head: bytes, body: bytes) -> None:
    """head then body, with no copy of either: one sendmsg, the rest (if any) as memoryviews."""
    sent = sock.sendmsg((head, body))
    if sent < len(head):
        sock.sendall(memoryview(head)[sent:])
        sent = len(head)
    if sent - len(head) < len(body):
        sock.sendall(memoryview(body)[sent - len(head):])


@functools.cache
def _real_poll() -> Any:
    """poll(2) itself, also where gevent patched `select` (looked up once, gevent imported lazily)."""
    from gevent import monkey

    return monkey.get_original("select", "poll")


def _idle_socket_alive(sock: Any) -> bool:
    """geventhttpclient's check of a pooled kept-alive socket (alive: open and not readable while
    idle, so no FIN or stray bytes waiting), made with the real poll(2). The library's own check
    uses gevent's select, which yields to the hub even with a zero timeout: one more loop round
    trip per request (~5 % of the generator's samples at 2,000 req/s)."""
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _real_poll()()
        poller.register(fd, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _no_delay(pool: Any) -> None:
    """TCP_NODELAY on each new connection of `pool`. Over TLS a request is two writes (head, body: an
    SSL socket has no sendmsg); with Nagle on, the body waits for the ACK of the head, which the server
    delays (~40 ms on Linux): measured, TorchServe HTTPS p50 8 -> 53 ms at 4 KiB bodies. geventhttpclient
    leaves Nagle on; plaintext sends head and body in one sendmsg and is not affected."""
    create = pool._create_tcp_socket

    def create_no_delay(family: int, socktype: int, protocol: int) -> Any:
        sock = create(family, socktype, protocol)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    pool._create_tcp_socket = create_no_delay


class HttpTransport:
    """POST bodies to one URL over kept-alive connections (geventhttpclient), over TLS when `security`
    says so, with the credentials' headers on every request."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        content_type: str,
        *,
        timeout_s: float,
        pool: int,
        security: Security | None = None,
        credentials: Credentials | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ):
        from geventhttpclient import HTTPClient

        self._path = path
        self._timeout_s = timeout_s
        self._credentials = credentials or Credentials()
        self._headers = {"Content-Type": content_type, "Connection": "keep-alive", **dict(headers),
                         **self._credentials.headers("inference")}
        self._heads: dict[int, bytes] = {}  # request head by body length (credentials in memory only)
        self._block_size = 65536
        tls: dict[str, Any] = {}
        self._tls = security is not None and security.tls
        if security is not None and security.tls:
            context = ssl_context(security)  # built once; the pool wraps each connection with it
            tls = {
                "ssl": True,
                "ssl_context_factory": lambda **_: context,
                "ssl_options": {"server_hostname": security.server_name or host.strip("[]")},
            }
        self._client = HTTPClient(
            host.strip("[]"),
            port,
            concurrency=pool,
            connection_timeout=timeout_s,
            network_timeout=timeout_s,
            block_size=self._block_size,
            **tls,
        )
        self._client._connection_pool._is_socket_alive = _idle_socket_alive  # type: ignore[method-assign]  # no yield per request
        if self._tls:
            _no_delay(self._client._connection_pool)

    def send(self, body: bytes) -> Outcome:
        import gevent

        try:
            with gevent.Timeout(self._timeout_s):
                response = self._exchange(body)
                data = response.read()
                code = response.status_code
                cache = cache_status(response.get(CACHE_HEADER))
                response.release()
        except gevent.Timeout:
            return Outcome("timeout", 0, 0, f"no response within {self._timeout_s} s")
        except TimeoutError as exc:
            return Outcome("timeout", 0, 0, describe_failure(exc))
        except Exception as exc:  # connection refused/reset, protocol errors: a record, not a crash
            return Outcome("error", 0, 0, self._credentials.redact(describe_failure(exc)))
        if 200 <= code < 300:
            return Outcome("ok", code, len(data), None, cache)
        # Any other status is an error, never a latency: also a balancer's own 502/503/504.
        text = data[:_ERROR_TEXT].decode("utf-8", "replace") or f"HTTP {code}"
        return Outcome("error", code, len(data), self._credentials.redact(text), cache)

    def _exchange(self, body: bytes) -> Any:
        """geventhttpclient's POST without its per-request copy of head + body: the head (cached per
        body length) and the body go out in one sendmsg; the response is geventhttpclient's own.
        Like HTTPClient.request for POST: no retry once sent; a reset while sending still reads
        an answer the server may have sent first (e.g. 413 for a body over its limit)."""
        from geventhttpclient.response import HTTPSocketPoolResponse

        head = self._heads.get(len(body))
        if head is None:
            if len(self._heads) > _HEAD_CACHE:
                self._heads.clear()
            head = self._heads[len(body)] = self._client._build_request(
                "POST", self._path, body=body, headers=self._headers
            ).encode("latin-1")
        pool = self._client._connection_pool
        sock = pool.get_socket()
        try:
            if self._tls:  # an SSL socket has no sendmsg: two writes (TLS records), still no copy
                sock.sendall(head)
                sock.sendall(body)
            else:
                _send_parts(sock, head, body)
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
                pool.release_socket(sock)
                raise
            try:  # the answer the server may have sent before closing; it releases the socket
                return HTTPSocketPoolResponse(sock, pool, block_size=self._block_size, method="POST")
            except Exception:
                raise exc from None
        except BaseException:
            # The timeout (gevent.Timeout) fired while the body was still going out (a slow or cut
            # link): the half-sent connection is closed and its pool slot freed. Kept, every such
            # timeout would hold one slot for good, and once `pool` of them had happened every
            # later request would wait for a slot until its own timeout, even after the link healed.
            pool.release_socket(sock)
            raise
        return HTTPSocketPoolResponse(sock, pool, block_size=self._block_size, method="POST")

    def prime(self) -> None:
        pool = self._client._connection_pool
        try:  # resolved once, here: each new pooled connection would resolve again in gevent's thread pool
            addresses = pool._resolve()
            pool._resolve = lambda: addresses  # type: ignore[method-assign]
        except OSError:
            pass  # resolution failed now: leave it to each connection, whose error becomes a record
        try:
            pool.return_socket(pool.get_socket())  # kept open: the first request uses it
        except Exception:  # noqa: S110 - best effort: the first request connects anyway
            pass

    def close(self) -> None:
        self._client.close()


class GrpcTransport:
    """Unary calls with raw request bytes on one grpcio channel (no generated stubs needed), over TLS
    when `security` says so, with the credentials as metadata on every call; blocking calls,
    cooperative where `grpc.experimental.gevent.init_gevent()` ran (Locust)."""

    def __init__(
        self,
        host: str,
        port: int,
        method: str,
        *,
        timeout_s: float,
        security: Security | None = None,
        credentials: Credentials | None = None,
    ):
        import grpc

        from ._spec import GRPC_CHANNEL_OPTIONS

        self._grpc = grpc
        self._timeout_s = timeout_s
        self._credentials = credentials or Credentials()
        self._metadata = self._credentials.grpc_metadata() or None
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        options = list(GRPC_CHANNEL_OPTIONS)
        if security is not None and security.tls:
            options += grpc_channel_options(security)
            channel_credentials = grpc_credentials(security)  # built once, for the one channel
            self._channel = grpc.secure_channel(f"{host}:{port}", channel_credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(f"{host}:{port}", options=options)
        self._call = self._channel.unary_unary(method, request_serializer=None, response_deserializer=None)

    def send(self, body: bytes) -> Outcome:
        try:
            response = self._call(body, timeout=self._timeout_s, metadata=self._metadata)
        except Exception as exc:
            return grpc_outcome(self._grpc, exc, self._credentials.redact)
        return Outcome("ok", 0, len(response), None)

    def prime(self) -> None:
        try:
            self._grpc.channel_ready_future(self._channel).result(timeout=self._timeout_s)
        except self._grpc.FutureTimeoutError:
            pass  # the requests will report what is wrong

    def close(self) -> None:
        self._channel.close()


def make_transport(settings: LoadSettings, credentials: Credentials | None = None) -> Transport:
    """The gevent sender for settings.server x settings.protocol at settings.host:resolved_port, with
    the target's TLS and credentials (read here unless the caller read them already)."""
    from ._spec import transport_spec

    spec = transport_spec(settings, credentials)
    if spec.kind == "grpc":
        return GrpcTransport(spec.host, spec.port, spec.grpc_method, timeout_s=spec.timeout_s,
                             security=spec.security, credentials=spec.credentials)
    return HttpTransport(spec.host, spec.port, spec.path, spec.content_type, timeout_s=spec.timeout_s,
                         pool=spec.pool, security=spec.security, credentials=spec.credentials,
                         headers=spec.extra_headers)
