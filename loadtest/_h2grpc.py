"""gRPC unary calls with HTTP/2 framed here, on the engine's loop: the pre-encoded body goes from
memory to the socket as memoryview slices behind 9-byte frame headers (one writev), no copy into a
library's buffer, no thread (grpcio's core copies each message into its own slices and hands every
call across its threads; measured in benchmarks/results/profiles/README.md).

One connection per transport multiplexes the calls, as a grpcio channel does. What is HTTP/2 here:
the preface and SETTINGS (our receive windows opened to 2^31-1, so the server never waits for us),
the server's SETTINGS (initial window, frame size, concurrent streams) honoured and acknowledged,
PING answered, flow control of what we send (connection and stream windows; WINDOW_UPDATE resumes a
paused body), HEADERS + CONTINUATION decoded with `hpack` (a stateful decoder, as the server's
dynamic table requires), RST_STREAM and GOAWAY. Our request headers are one HPACK block encoded once
with never-indexed literals (no dynamic-table state), reused for every call.

Records as grpcio's: ok with the response message's length; otherwise the grpc-status code with its
name and the grpc-message (DEADLINE_EXCEEDED is a `timeout`), an HTTP status without a grpc-status
mapped as gRPC's spec maps it, a reset stream or lost connection UNAVAILABLE / INTERNAL / CANCELLED.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import struct
import time
from typing import Any
from urllib.parse import unquote

from ._core import Ticket
from ._security import ssl_context
from ._spec import TransportSpec
from ._transports import Outcome, describe_failure

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
FRAME = struct.Struct(">BHBBI")  # length (24 bits as 8 + 16), type, flags, stream id
SETTING = struct.Struct(">HI")
WINDOW = struct.Struct(">I")
MAX_WINDOW = 2**31 - 1
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x3, 0x4, 0x5
SWEEP_S = 0.002  # a timeout is recorded at most this long after its deadline (and the loop's 1 ms timers)
_ERROR_TEXT = 300

STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)
CANCELLED, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE = 1, 4, 13, 14
# gRPC's http-grpc-status-mapping: an HTTP status that came without a grpc-status
HTTP_TO_GRPC = {400: INTERNAL, 401: 16, 403: 7, 404: 12, 429: UNAVAILABLE, 502: UNAVAILABLE,
                503: UNAVAILABLE, 504: UNAVAILABLE}


def frame(kind: int, flags: int, stream: int, length: int) -> bytes:
    return FRAME.pack(length >> 16, length & 0xFFFF, kind, flags, stream)


def failure(code: int, details: str) -> Outcome:
    name = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else "UNKNOWN"
    kind = "timeout" if code == DEADLINE_EXCEEDED else "error"
    return Outcome(kind, code, 0, f"{name}: {details}"[:_ERROR_TEXT])


# a call past its deadline, swept or answered only after it, as grpcio's client records it
PAST_DEADLINE = failure(DEADLINE_EXCEEDED, "Deadline Exceeded")


def grpc_timeout(seconds: float) -> str:
    """The grpc-timeout header: at most 8 digits and a unit."""
    millis = max(1, round(seconds * 1000))
    return f"{millis}m" if millis < 10**8 else f"{max(1, round(seconds))}S"


class HeaderDecoder:
    """hpack's decoding (stateful: the server's dynamic table), remembered for the blocks that leave the
    table as it was: a server's answers repeat the same few indexed fields, and decoding each again in
    pure Python costs tens of microseconds per call."""

    def __init__(self) -> None:
        import hpack

        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = 1 << 24
        self._table = self._decoder.header_table.dynamic_entries
        self._decoded: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        decoded = self._decoded.get(block)
        if decoded is not None:
            return decoded
        table = self._table
        before = (len(table), id(table[0]) if table else 0)
        decoded = [(bytes(name), bytes(value)) for name, value in self._decoder.decode(block, raw=True)]
        if (len(table), id(table[0]) if table else 0) == before:
            if len(self._decoded) < 256:
                self._decoded[block] = decoded
        else:  # the table changed: what was remembered may now decode differently
            self._decoded.clear()
        return decoded


class _Stream:
    __slots__ = ("id", "ticket", "done", "deadline_ns", "window", "pending", "status", "grpc_status",
                 "message", "bytes_in")

    def __init__(self, sid: int, ticket: Ticket, done: Any, deadline_ns: int, window: int) -> None:
        self.id = sid
        self.ticket = ticket
        self.done = done
        self.deadline_ns = deadline_ns
        self.window = window
        self.pending: collections.deque[memoryview] = collections.deque()  # body not yet sent
        self.status = 0  # :status
        self.grpc_status: int | None = None
        self.message = ""
        self.bytes_in = 0


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection carrying many unary calls."""

    def __init__(self, owner: H2GrpcTransport) -> None:
        self._owner = owner
        self._decode = HeaderDecoder().decode
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}  # in the order they started
        self._next_id = 1
        self.max_streams = 1 << 30
        self._max_frame = 16384
        self._initial_window = 65535
        self._window = 65535  # what we may still send on the connection
        self._received = 0  # DATA bytes since we last opened our connection window
        self._buffer = bytearray()
        self._block: tuple[int, int, bytearray] | None = None  # HEADERS awaiting CONTINUATION
        self.going_away = False
        self.ready = owner.loop.create_future()

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        settings = SETTING.pack(SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW) + SETTING.pack(0x2, 0)  # no push
        self.transport.write(  # type: ignore[union-attr]
            PREFACE + frame(SETTINGS, 0, 0, len(settings)) + settings
            + frame(WINDOW_UPDATE, 0, 0, 4) + WINDOW.pack(MAX_WINDOW - 65535)
        )
        if not self.ready.done():
            self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        reason = describe_failure(exc) if exc is not None else "the server closed the connection"
        self._owner.lost(self, failure(UNAVAILABLE, f"connection lost ({reason})"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset, size = 0, len(buffer)
        while size - offset >= 9:
            high, low, kind, flags, sid = FRAME.unpack_from(buffer, offset)
            length = (high << 16) | low
            end = offset + 9 + length
            if end > size:
                break
            self._frame(kind, flags, sid & 0x7FFFFFFF, buffer, offset + 9, end)
            offset = end
            if self.transport is None:
                return
        del buffer[:offset]

    # -- frames -----------------------------------------------------------------------------------
    def _frame(self, kind: int, flags: int, sid: int, buffer: bytearray, start: int, end: int) -> None:
        if kind == DATA:
            self._data(flags, sid, buffer, start, end)
        elif kind == HEADERS:
            if flags & PADDED:
                end -= buffer[start]
                start += 1
            if flags & PRIORITY_FLAG:
                start += 5
            block = bytearray(buffer[start:end])
            if flags & END_HEADERS:
                self._headers(sid, flags, block)
            else:
                self._block = (sid, flags, block)
        elif kind == CONTINUATION and self._block is not None:
            self._block[2].extend(buffer[start:end])
            if flags & END_HEADERS:
                block_sid, block_flags, block = self._block
                self._block = None
                self._headers(block_sid, block_flags, block)
        elif kind == WINDOW_UPDATE:
            increment = WINDOW.unpack_from(buffer, start)[0] & 0x7FFFFFFF
            if sid == 0:
                self._window += increment
                self._send_pending()
            else:
                stream = self.streams.get(sid)
                if stream is not None:
                    stream.window += increment
                    self._send_pending()
        elif kind == SETTINGS and not flags & ACK:
            self._settings(buffer, start, end)
        elif kind == PING and not flags & ACK:
            self._write([frame(PING, ACK, 0, 8), bytes(buffer[start:end])])
        elif kind == RST_STREAM:
            error = WINDOW.unpack_from(buffer, start)[0]
            code = CANCELLED if error == 8 else UNAVAILABLE if error == 7 else INTERNAL
            self._finish(sid, failure(code, f"stream reset by the server (HTTP/2 error code {error})"))
        elif kind == GOAWAY:
            last = WINDOW.unpack_from(buffer, start)[0] & 0x7FFFFFFF
            self.going_away = True
            for stream_id in [s for s in self.streams if s > last]:
                self._finish(stream_id, failure(UNAVAILABLE, "the server is going away (GOAWAY)"))
            self._owner.going_away(self)

    def _settings(self, buffer: bytearray, start: int, end: int) -> None:
        for at in range(start, end - 5, 6):
            key, value = SETTING.unpack_from(buffer, at)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                delta = value - self._initial_window
                self._initial_window = value
                for stream in self.streams.values():
                    stream.window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self._max_frame = value
            elif key == SETTINGS_MAX_CONCURRENT_STREAMS:
                self.max_streams = value
        self._write([frame(SETTINGS, ACK, 0, 0)])
        self._send_pending()
        self._owner.room(self)

    def _data(self, flags: int, sid: int, buffer: bytearray, start: int, end: int) -> None:
        length = end - start
        self._received += length
        if self._received > MAX_WINDOW // 2:  # open our connection window again, long before it closes
            self._write([frame(WINDOW_UPDATE, 0, 0, 4), WINDOW.pack(self._received)])
            self._received = 0
        stream = self.streams.get(sid)
        if stream is None:
            return
        if flags & PADDED:
            length -= buffer[start] + 1
        stream.bytes_in += length
        if flags & END_STREAM:  # gRPC ends with trailers; a body that ends the stream lacks a status
            self._complete(stream)

    def _headers(self, sid: int, flags: int, block: bytearray) -> None:
        headers = self._decode(bytes(block))
        stream = self.streams.get(sid)
        if stream is None:
            return
        for name, value in headers:
            if name == b":status":
                stream.status = int(value)
            elif name == b"grpc-status":
                stream.grpc_status = int(value)
            elif name == b"grpc-message":
                stream.message = unquote(value.decode("utf-8", "replace"))
        if flags & END_STREAM:
            self._complete(stream)

    # -- calls ------------------------------------------------------------------------------------
    def start(self, block: bytes, body: bytes, ticket: Ticket, done: Any, deadline_ns: int) -> None:
        sid = self._next_id
        self._next_id += 2
        stream = _Stream(sid, ticket, done, deadline_ns, self._initial_window)
        self.streams[sid] = stream
        stream.pending.append(memoryview(b"\x00" + len(body).to_bytes(4, "big")))
        stream.pending.append(memoryview(body))
        parts = [frame(HEADERS, END_HEADERS, sid, len(block)), block]
        self._frames(stream, parts)
        self._write(parts)

    def _frames(self, stream: _Stream, parts: list[Any]) -> None:
        """DATA frames of the stream's unsent body, as far as the windows allow, appended to `parts`."""
        pending = stream.pending
        while pending:
            allowed = min(self._window, stream.window, self._max_frame)
            if allowed <= 0:
                return
            size = 0
            chunk: list[memoryview] = []
            while pending and size < allowed:
                piece = pending[0]
                if len(piece) <= allowed - size:
                    chunk.append(pending.popleft())
                    size += len(piece)
                else:
                    chunk.append(piece[: allowed - size])
                    pending[0] = piece[allowed - size:]
                    size = allowed
            self._window -= size
            stream.window -= size
            parts.append(frame(DATA, 0 if pending else END_STREAM, stream.id, size))
            parts.extend(chunk)

    def _send_pending(self) -> None:
        parts: list[Any] = []
        for stream in self.streams.values():
            if stream.pending:
                self._frames(stream, parts)
        if parts:
            self._write(parts)

    def _write(self, parts: list[Any]) -> None:
        if self.transport is not None:
            self.transport.writelines(parts)

    def _complete(self, stream: _Stream) -> None:
        code = stream.grpc_status
        if time.monotonic_ns() > stream.deadline_ns:  # answered after a stall of this loop let the
            # deadline pass unswept: DEADLINE_EXCEEDED, as grpcio's client records it, never a latency
            outcome = PAST_DEADLINE
        elif code == 0:
            outcome = Outcome("ok", 0, max(0, stream.bytes_in - 5), None)
        elif code is not None:
            outcome = failure(code, stream.message)
        elif stream.status and stream.status != 200:
            code = HTTP_TO_GRPC.get(stream.status, 2)
            outcome = failure(code, f"HTTP status {stream.status} without a gRPC status")
        else:
            outcome = failure(INTERNAL, "the server ended the call without a gRPC status")
        self._finish(stream.id, outcome)

    def _finish(self, sid: int, outcome: Outcome) -> None:
        stream = self.streams.pop(sid, None)
        if stream is None:
            return
        if outcome.error is not None:
            outcome = outcome._replace(error=self._owner.redact(outcome.error))
        stream.done(stream.ticket, outcome)
        self._owner.room(self)

    def cancel(self, sid: int, outcome: Outcome | None) -> None:
        """Reset one stream (CANCEL); record `outcome` unless None (drained: already recorded)."""
        self._write([frame(RST_STREAM, 0, sid, 4), WINDOW.pack(8)])
        if outcome is None:
            self.streams.pop(sid, None)
        else:
            self._finish(sid, outcome)

    def fail_all(self, outcome: Outcome) -> None:
        for sid in list(self.streams):
            self._finish(sid, outcome)


class H2GrpcTransport:
    """Unary calls with raw request bytes over one HTTP/2 connection framed here (asyncio)."""

    def __init__(self, spec: TransportSpec, loop: asyncio.AbstractEventLoop) -> None:
        import hpack

        self.loop = loop
        self._spec = spec
        self._timeout_s = spec.timeout_s
        self._timeout_ns = round(spec.timeout_s * 1e9)
        self._ssl = None
        if spec.tls and spec.security is not None:
            self._ssl = ssl_context(spec.security, alpn=("h2",))
        self._server_hostname = spec.server_hostname
        self.redact = spec.credentials.redact  # a server may echo the credentials in its error text
        self._address: tuple[str, int] = (spec.bare_host, spec.port)
        headers = [
            (":method", "POST"), (":scheme", "https" if spec.tls else "http"),
            (":path", spec.grpc_method), (":authority", spec.authority),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "inferload"),
            ("grpc-timeout", grpc_timeout(spec.timeout_s)), *spec.metadata,
        ]
        # never indexed: the block leaves the encoder's dynamic table alone, so one block serves every call
        self._block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(n, v) for n, v in headers])
        self._connection: _Connection | None = None
        self._connecting = False
        self._waiting: collections.deque[tuple[bytes, Ticket, Any, int]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    # -- calls ------------------------------------------------------------------------------------
    def start(self, body: bytes, ticket: Ticket, done: Any) -> None:
        deadline = time.monotonic_ns() + self._timeout_ns
        connection = self._connection
        if (connection is not None and connection.transport is not None and not connection.going_away
                and not self._waiting and len(connection.streams) < connection.max_streams):
            connection.start(self._block, body, ticket, done, deadline)
        else:
            self._waiting.append((body, ticket, done, deadline))
            self._open()
        if self._sweeper is None:
            self._arm_sweeper(deadline)

    def _arm_sweeper(self, deadline_ns: int) -> None:
        """Wake at the oldest call's deadline (one timeout for all), not every few milliseconds."""
        delay = max(deadline_ns - time.monotonic_ns(), 0) / 1e9 + SWEEP_S
        self._sweeper = self.loop.call_later(delay, self._sweep)

    def room(self, connection: _Connection) -> None:
        """A stream ended or the limits changed: start what waits, as far as the connection takes."""
        if connection is not self._connection or connection.transport is None:
            return
        waiting = self._waiting
        while waiting and len(connection.streams) < connection.max_streams:
            body, ticket, done, deadline = waiting.popleft()
            connection.start(self._block, body, ticket, done, deadline)

    def _open(self) -> None:
        connection = self._connection
        if self._connecting or self._closed:
            return
        if connection is not None and connection.transport is not None and not connection.going_away:
            return
        self._connecting = True
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        connection = _Connection(self)
        try:
            await self.loop.create_connection(
                lambda: connection, *self._address, ssl=self._ssl, server_hostname=self._server_hostname
            )
        except Exception as exc:  # refused, unreachable, TLS: every waiting call's record
            self._connecting = False
            outcome = failure(UNAVAILABLE, f"failed to connect ({describe_failure(exc)})")
            while self._waiting:
                _, ticket, done, _ = self._waiting.popleft()
                done(ticket, outcome)
            return
        self._connecting = False
        if self._closed:
            if connection.transport is not None:
                connection.transport.close()
            return
        self._connection = connection
        self.room(connection)

    def lost(self, connection: _Connection, outcome: Outcome) -> None:
        connection.fail_all(outcome)
        if connection is self._connection:
            self._connection = None
            if self._waiting:
                self._open()

    def going_away(self, connection: _Connection) -> None:
        if connection is self._connection and self._waiting:
            self._connection = None
            self._open()

    def _sweep(self) -> None:
        """Calls past their deadline: reset and recorded as DEADLINE_EXCEEDED, as grpcio's client does."""
        self._sweeper = None
        now = time.monotonic_ns()
        connection = self._connection
        if connection is not None:
            streams = connection.streams
            while streams:
                stream = next(iter(streams.values()))
                if stream.deadline_ns > now:
                    break
                connection.cancel(stream.id, PAST_DEADLINE)
        while self._waiting and self._waiting[0][3] <= now:
            _, ticket, done, _ = self._waiting.popleft()
            done(ticket, PAST_DEADLINE)
        oldest = [w[3] for w in itertools.islice(self._waiting, 1)]
        if connection is not None:
            oldest += [s.deadline_ns for s in itertools.islice(connection.streams.values(), 1)]
        if oldest and not self._closed:
            self._arm_sweeper(min(oldest))

    # -- life -------------------------------------------------------------------------------------
    async def prime(self) -> None:
        from ._aio_transports import resolve_once

        self._address = await resolve_once(self.loop, self._address)
        self._connecting = True
        await self._connect()

    def abort(self) -> None:
        connection = self._connection
        if connection is not None:
            for sid in list(connection.streams):
                connection.cancel(sid, None)
        self._waiting.clear()

    async def close(self) -> None:
        self._closed = True
        self.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        connection = self._connection
        if connection is not None and connection.transport is not None:
            connection.transport.close()
        await asyncio.sleep(0)
