"""The asyncio engine's senders: HTTP/1.1 and gRPC on the worker's one loop, from a `TransportSpec`.

HTTP: a pool of kept-alive connections, each an `asyncio.Protocol` with one request at a time. A
request is the cached head for its body length and the pre-encoded body, written together (one
writev, no concatenated copy); the answer is parsed by `httptools` (llhttp, C) as it arrives, the
body only counted (and its first bytes kept when the status is an error). No task per request:
the connection's callbacks finish it. Timeouts: one timer at the oldest request's deadline (one
timeout for all, so the oldest expire first), instead of a timer per request.

gRPC: grpc.aio on the same loop, raw bytes in and out (no stubs, no serializers); the outcome is
read in the call's completion callback.

Both say what went wrong as an `Outcome` (status, code, error text), as the gevent transports do:
an HTTP status that is not 2xx is an error with the server's text, a gRPC status its name and
details, no answer within the timeout a `timeout`, a refused or reset connection an `error`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import socket
import time
from typing import Any

from ._core import Ticket
from ._security import grpc_channel_options, grpc_credentials, ssl_context
from ._spec import TransportSpec
from ._transports import CACHE_HEADER, Outcome, cache_status, describe_failure, grpc_outcome

_ERROR_TEXT = 300
_HEAD_CACHE = 64  # distinct body lengths whose request head is kept
_CACHE_HEADER = CACHE_HEADER.lower().encode()
SWEEP_S = 0.002  # a timeout is recorded at most this long after its deadline (and the loop's 1 ms timers)


def timed_out(timeout_s: float) -> Outcome:
    """A request with no answer within `timeout_s`: swept at its deadline, or answered only after it."""
    return Outcome("timeout", 0, 0, f"no response within {timeout_s} s")


async def resolve_once(loop: asyncio.AbstractEventLoop, address: tuple[str, int]) -> tuple[str, int]:
    """The address every later connection goes to, resolved once before the schedule (a failure now
    leaves the name: each connection tries again, and its error becomes a record)."""
    try:
        infos = await loop.getaddrinfo(*address, type=socket.SOCK_STREAM)
    except OSError:
        return address
    return (str(infos[0][4][0]), int(infos[0][4][1]))


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection; at most one request on it at a time."""

    def __init__(self, pool: AioHttpTransport) -> None:
        import httptools

        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._errors = (httptools.HttpParserError,)
        self.transport: asyncio.Transport | None = None
        self.ticket: Ticket | None = None
        self.done: Any = None
        self.deadline_ns = 0
        self._status = 0
        self._bytes_in = 0
        self._text = b""
        self._cache = "none"
        self.ready: asyncio.Future[None] = pool.loop.create_future()

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except self._errors as exc:
            self._fail(Outcome("error", 0, self._bytes_in, self._pool.redact(describe_failure(exc))))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pool.forget(self)
        if self.ticket is not None:
            reason = exc or ConnectionResetError("the server closed the connection before answering")
            self._finish(Outcome("error", 0, self._bytes_in, self._pool.redact(describe_failure(reason))))

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == _CACHE_HEADER:
            self._cache = cache_status(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._bytes_in += len(body)
        if not 200 <= self._status < 300 and len(self._text) < _ERROR_TEXT:
            self._text += body[:_ERROR_TEXT]

    def on_message_complete(self) -> None:
        code = self._status
        if time.monotonic_ns() > self.deadline_ns:  # answered, but only after a stall of this loop let
            # the deadline pass unswept: a timeout, as the sweeper would have recorded it, never a latency
            outcome = timed_out(self._pool._timeout_s)
        elif 200 <= code < 300:
            outcome = Outcome("ok", code, self._bytes_in, None, self._cache)
        else:  # any other status is an error, never a latency: also a balancer's own 502/503/504
            text = self._text[:_ERROR_TEXT].decode("utf-8", "replace") or f"HTTP {code}"
            outcome = Outcome("error", code, self._bytes_in, self._pool.redact(text), self._cache)
        keep = self._parser.should_keep_alive()
        self._finish(outcome)
        if keep:
            self._pool.release(self)
        elif self.transport is not None:
            self.transport.close()

    # -- requests ---------------------------------------------------------------------------------
    def send(self, head: bytes, body: bytes, ticket: Ticket, done: Any, deadline_ns: int) -> None:
        self.ticket, self.done, self.deadline_ns = ticket, done, deadline_ns
        self._status, self._bytes_in, self._text, self._cache = 0, 0, b"", "none"
        assert self.transport is not None
        self.transport.writelines((head, body))

    def _finish(self, outcome: Outcome) -> None:
        ticket, done = self.ticket, self.done
        self.ticket = self.done = None
        self._pool.idle_from_busy(self)
        if ticket is not None:
            done(ticket, outcome)

    def _fail(self, outcome: Outcome) -> None:
        """Finish the request with `outcome` and close: the connection's state is unknown."""
        transport = self.transport
        self._finish(outcome)
        if transport is not None:
            transport.abort()

    def time_out(self, timeout_s: float) -> None:
        self._fail(timed_out(timeout_s))


class AioHttpTransport:
    """POST pre-encoded bodies to one URL over a pool of kept-alive connections (asyncio)."""

    def __init__(self, spec: TransportSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._spec = spec
        self._timeout_s = spec.timeout_s
        self._timeout_ns = round(spec.timeout_s * 1e9)
        self._ssl = ssl_context(spec.security) if spec.tls and spec.security is not None else None
        self._server_hostname = spec.server_hostname
        self.redact = spec.credentials.redact  # a server may echo the credentials in its error text
        self._address: tuple[str, int] = (spec.bare_host, spec.port)
        extra = "".join(f"{name}: {value}\r\n" for name, value in spec.headers)
        self._head_start = (
            f"POST {spec.path} HTTP/1.1\r\nHost: {spec.authority}\r\nContent-Type: {spec.content_type}\r\n"
            f"{extra}Content-Length: "
        ).encode("latin-1")
        self._heads: dict[int, bytes] = {}
        self._idle: list[_Connection] = []
        self._busy: dict[_Connection, None] = {}  # in the order their requests started
        self._connections = 0  # open or opening
        self._opening = 0
        self._waiting: collections.deque[tuple[bytes, Ticket, Any, int]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def _head(self, length: int) -> bytes:
        head = self._heads.get(length)
        if head is None:
            if len(self._heads) > _HEAD_CACHE:
                self._heads.clear()
            head = self._heads[length] = self._head_start + b"%d\r\n\r\n" % length
        return head

    def start(self, body: bytes, ticket: Ticket, done: Any) -> None:
        deadline = time.monotonic_ns() + self._timeout_ns
        if self._idle:
            connection = self._idle.pop()
            self._busy[connection] = None
            connection.send(self._head(len(body)), body, ticket, done, deadline)
        else:
            self._waiting.append((body, ticket, done, deadline))
            self._grow()
        if self._sweeper is None:
            self._arm_sweeper(deadline)

    def _arm_sweeper(self, deadline_ns: int) -> None:
        """Wake at the oldest request's deadline (one timeout for all: the oldest expire first), not
        every few milliseconds: at low rates the sweeps would cost more than the requests."""
        delay = max(deadline_ns - time.monotonic_ns(), 0) / 1e9 + SWEEP_S
        self._sweeper = self.loop.call_later(delay, self._sweep)

    def _grow(self) -> None:
        """One more connection for each waiting request no connection is being opened for."""
        while len(self._waiting) > self._opening and self._connections < self._spec.pool and not self._closed:
            self._connections += 1
            self._opening += 1
            self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        connection = _Connection(self)
        try:
            await self.loop.create_connection(
                lambda: connection, *self._address, ssl=self._ssl, server_hostname=self._server_hostname
            )
        except Exception as exc:  # refused, unreachable, TLS: the oldest waiting request's record
            self._connections -= 1
            self._opening -= 1
            if self._waiting:
                _, ticket, done, _ = self._waiting.popleft()
                done(ticket, Outcome("error", 0, 0, self.redact(describe_failure(exc))))
            self._grow()
            return
        self._opening -= 1
        if self._closed:
            assert connection.transport is not None
            connection.transport.close()
            return
        self.release(connection)

    def release(self, connection: _Connection) -> None:
        """A connection is free: the next waiting request takes it, else it goes idle."""
        if connection.transport is None or self._closed:
            return
        if self._waiting:
            body, ticket, done, deadline = self._waiting.popleft()
            self._busy[connection] = None
            connection.send(self._head(len(body)), body, ticket, done, deadline)
        else:
            self._idle.append(connection)

    def idle_from_busy(self, connection: _Connection) -> None:
        self._busy.pop(connection, None)

    def forget(self, connection: _Connection) -> None:
        """The connection closed."""
        self._connections -= 1
        self._busy.pop(connection, None)
        if connection in self._idle:
            self._idle.remove(connection)
        self._grow()

    def _sweep(self) -> None:
        """Time out the requests past their deadline: the busy ones in start order, then the waiting."""
        self._sweeper = None
        now = time.monotonic_ns()
        busy = self._busy
        while busy:
            connection = next(iter(busy))
            if connection.deadline_ns > now:
                break
            connection.time_out(self._timeout_s)
        while self._waiting and self._waiting[0][3] <= now:
            _, ticket, done, _ = self._waiting.popleft()
            done(ticket, timed_out(self._timeout_s))
        oldest = [c.deadline_ns for c in itertools.islice(busy, 1)]
        oldest += [w[3] for w in itertools.islice(self._waiting, 1)]
        if oldest and not self._closed:
            self._arm_sweeper(min(oldest))

    async def prime(self) -> None:
        self._address = await resolve_once(self.loop, self._address)
        connection = _Connection(self)
        try:
            await self.loop.create_connection(
                lambda: connection, *self._address, ssl=self._ssl, server_hostname=self._server_hostname
            )
        except Exception:  # noqa: S110, BLE001 - best effort: the first request connects anyway
            return
        self._connections += 1
        self._idle.append(connection)

    def abort(self) -> None:
        for connection in list(self._busy):
            connection.ticket = connection.done = None
            if connection.transport is not None:
                connection.transport.abort()
        self._busy.clear()
        self._waiting.clear()

    async def close(self) -> None:
        self._closed = True
        self.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports close


class AioGrpcTransport:
    """Unary calls with raw request bytes on one grpc.aio channel, on the engine's loop."""

    def __init__(self, spec: TransportSpec, loop: asyncio.AbstractEventLoop) -> None:
        import grpc

        self.loop = loop
        self._grpc = grpc
        self._timeout_s = spec.timeout_s
        self._metadata = tuple(spec.metadata) or None
        self._redact = spec.credentials.redact
        options = list(spec.channel_options)
        asyncio.set_event_loop(loop)  # grpc.aio binds its channel to the current loop
        if spec.tls and spec.security is not None:
            options += grpc_channel_options(spec.security)
            credentials = grpc_credentials(spec.security)
            self._channel = grpc.aio.secure_channel(spec.authority, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(spec.authority, options=options)
        self._call = self._channel.unary_unary(spec.grpc_method, request_serializer=None,
                                               response_deserializer=None)
        self._calls: dict[Any, None] = {}

    def start(self, body: bytes, ticket: Ticket, done: Any) -> None:
        self._calls[self.loop.create_task(self._one(body, ticket, done))] = None

    async def _one(self, body: bytes, ticket: Ticket, done: Any) -> None:
        try:
            response = await self._call(body, timeout=self._timeout_s, metadata=self._metadata)
        except asyncio.CancelledError:
            return  # aborted: drain has recorded it
        except Exception as exc:  # grpc.aio.AioRpcError is a grpc.RpcError: status and details
            outcome = grpc_outcome(self._grpc, exc, self._redact)
        else:
            outcome = Outcome("ok", 0, len(response), None)
        finally:
            self._calls.pop(asyncio.current_task(), None)
        done(ticket, outcome)

    async def prime(self) -> None:
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self._timeout_s)
        except TimeoutError:
            pass  # not ready: the requests will report what is wrong

    def abort(self) -> None:
        for task in list(self._calls):
            task.cancel()
        self._calls.clear()

    async def close(self) -> None:
        self.abort()
        await self._channel.close()


def make_aio_transport(spec: TransportSpec, loop: asyncio.AbstractEventLoop) -> Any:
    """The asyncio sender for a spec (made on, and used only from, `loop`)."""
    if spec.kind == "grpc":
        if spec.grpc_client == "grpc.aio":
            return AioGrpcTransport(spec, loop)
        from ._h2grpc import H2GrpcTransport

        return H2GrpcTransport(spec, loop)
    return AioHttpTransport(spec, loop)
