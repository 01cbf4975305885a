"""A request whose body is still going out when its timeout fires (a slow or cut link) is a timeout
record, and its connection gives its pool slot back: once the link heals, requests succeed again.

The peer is a real socket server in the test (gevent): first it reads nothing, so a body larger than
the socket buffers stalls in `sendall`, as on a link shaped far below the offered bytes; then it
answers like a server. The HTTP transport's pool has two slots, so two stalled sends that kept
their slots would leave none for the requests after the stall.
"""

from __future__ import annotations

import gevent
import gevent.socket
import pytest
from gevent.server import StreamServer

from loadtest._transports import HttpTransport

STALLED_BODY = b"0" * (64 << 20)  # far more than loopback's socket buffers hold (a few MiB)
POOL = 2
TIMEOUT_S = 0.3


class StallThenServe:
    """Reads nothing while `stalled` (and drops those connections when the stall ends); connections
    made afterwards get each request answered with 200 and a small body."""

    def __init__(self) -> None:
        self.stalled = True
        self.server = StreamServer(("127.0.0.1", 0), self.handle)
        self.server.start()

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def handle(self, sock: gevent.socket.socket, address: object) -> None:
        if self.stalled:
            while self.stalled:
                gevent.sleep(0.01)  # never reads: the client's send buffer fills and its sendall waits
            return  # the stalled connection is dropped (closed), as a server behind a cut link would
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(data) < length:
                data += sock.recv(65536)
            data = data[length:]
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")


@pytest.fixture
def peer() -> StallThenServe:
    server = StallThenServe()
    yield server
    server.server.stop(timeout=1)


def test_requests_succeed_again_after_sends_timed_out_on_every_pooled_connection(
    peer: StallThenServe,
) -> None:
    transport = HttpTransport("127.0.0.1", peer.port, "/predictions/linear", "application/json",
                              timeout_s=TIMEOUT_S, pool=POOL)
    try:
        stalled = [transport.send(STALLED_BODY) for _ in range(POOL + 1)]
        assert [outcome.status for outcome in stalled] == ["timeout"] * (POOL + 1)
        assert all(outcome.bytes_in == 0 for outcome in stalled)  # no response: never a latency

        peer.stalled = False
        healed = [transport.send(b'{"instances": [[0.0]]}') for _ in range(POOL + 1)]
        assert [(outcome.status, outcome.code) for outcome in healed] == [("ok", 200)] * (POOL + 1)
    finally:
        transport.close()
