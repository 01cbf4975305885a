"""gRPC calls for gevent code, made by grpc.aio on one dedicated OS thread (uvloop).

Why: grpcio's gevent integration (`init_gevent`) runs every blocking call's completion-queue wait
in gevent's thread pool, which costs about a third more generator CPU per request than grpc.aio
(measured: benchmarks/results/generator_capacity*.json, `cpu_us_per_request`). Here the greenlet that sends
queues its call for the aio thread and sleeps; the thread starts the call on its event loop and,
when it completes, hands the result back through one deque and one libev async watcher (which
coalesces wake-ups). Requires real threads: the load worker monkey-patches everything but
`thread`; under full patching (Locust) the transport keeps the blocking, `init_gevent` path.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

import gevent
from gevent import monkey
from gevent.hub import Waiter

_START_TIMEOUT_S = 30.0
CallResult = tuple[int, Any, "BaseException | None"]  # (started_ns, response bytes or None, failure or None)


class AioGrpcThread:
    """One grpc.aio channel served by a thread of its own; `call` blocks only the calling greenlet."""

    def __init__(
        self,
        target: str,
        method: str,
        *,
        options: list[tuple[str, Any]],
        credentials: Any = None,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        """`credentials`: grpc.ChannelCredentials for a TLS channel (None: plaintext); `metadata` goes
        with every call (credentials as data)."""
        self._credentials = credentials
        self._metadata = metadata
        self._hub = gevent.get_hub()
        self._done: collections.deque[tuple[Waiter, CallResult]] = collections.deque()
        self._wake = self._hub.loop.async_()
        self._wake.start(self._deliver)
        self._wake.ref = False  # an idle transport does not keep the hub alive (see `call`)
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channel: Any = None
        self._call: Any = None
        self._pending: collections.deque[tuple[Waiter, bytes, float]] = collections.deque()
        self._kick_armed = False  # a loop wake-up for _pending is already on its way
        self._kick_lock = threading.Lock()
        started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(target, method, options, started), name="inferload-grpc", daemon=True
        )
        if monkey.is_module_patched("threading"):
            raise RuntimeError("AioGrpcThread needs real threads: do not monkey-patch `thread`")
        self._thread.start()
        if not started.wait(_START_TIMEOUT_S) or self._failure is not None:
            raise RuntimeError(f"the gRPC thread did not start: {self._failure!r}")

    # -- the aio thread ----------------------------------------------------------------------------
    def _run(
        self, target: str, method: str, options: list[tuple[str, Any]], started: threading.Event
    ) -> None:
        import grpc
        import uvloop

        try:
            loop = uvloop.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(target, options=options)
            else:
                self._channel = grpc.aio.secure_channel(target, self._credentials, options=options)
            self._call = self._channel.unary_unary(
                method, request_serializer=None, response_deserializer=None
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the constructor
            self._failure = exc
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.close()

    def _start_pending(self) -> None:
        with self._kick_lock:
            self._kick_armed = False
        loop = self._loop
        assert loop is not None
        while self._pending:
            waiter, body, timeout = self._pending.popleft()
            loop.create_task(self._one(waiter, body, timeout))

    async def _one(self, waiter: Waiter, body: bytes, timeout: float) -> None:
        started_ns = time.monotonic_ns()
        try:
            response = await self._call(body, timeout=timeout, metadata=self._metadata)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller as itself
            self._done.append((waiter, (started_ns, None, exc)))
        else:
            self._done.append((waiter, (started_ns, response, None)))
        self._wake.send()

    # -- the gevent side ---------------------------------------------------------------------------
    def _deliver(self) -> None:
        done = self._done
        while done:
            waiter, result = done.popleft()
            waiter.switch(result)

    def call(self, body: bytes, timeout: float) -> CallResult:
        """(started_ns, response, None), or (started_ns, None, what the call raised: grpc.aio.AioRpcError
        is a grpc.RpcError). started_ns: when the thread started the call; the wait before it (the
        hand-off, longer when the process is short of CPU) is the generator's delay, not the server's."""
        waiter = Waiter(self._hub)
        self._pending.append((waiter, body, timeout))
        with self._kick_lock:  # one call_soon_threadsafe (a pipe write) per burst, not per request
            kick = not self._kick_armed
            self._kick_armed = True
        if kick:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._start_pending)
        self._waiting += 1
        self._wake.ref = True  # while a call is out, the hub must wait for its answer
        try:
            result: CallResult = waiter.get()
        finally:
            self._waiting -= 1
            if not self._waiting:
                self._wake.ref = False
        return result

    def wait_ready(self, timeout_s: float) -> bool:
        """Connect before the schedule starts (blocks the hub: call it before any load)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._ready(timeout_s), self._loop)
        return bool(future.result(timeout_s + 5.0))

    async def _ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._channel.close(), loop).result(5.0)
        except Exception:  # noqa: S110,BLE001 - closing is best effort
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5.0)
        self._wake.stop()
        self._wake.close()
