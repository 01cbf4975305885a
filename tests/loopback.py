"""A TCP server on loopback for tests of the code that talks to one (TLS handshakes, reachability
probes): the thread, its accept loop and its shutdown, written once."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def loopback_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """Listens on 127.0.0.1 (a free port) and hands each connection, one at a time in a thread, to
    `handle`, which owns it from then on. Yields the port; on exit stops accepting and closes."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            handle(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()
