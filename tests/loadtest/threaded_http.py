"""A standard-library HTTP server on a free loopback port, served from a thread: the transports' tests
send to it. Standard library only, so it serves in an interpreter gevent has patched and in one it has not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[int]:
    """Serve `server` (bound, e.g. to ("127.0.0.1", 0)) from a daemon thread; yields its port, and shuts
    it down and closes its socket afterwards."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
