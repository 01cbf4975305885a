"""A TCP proxy that delays the bytes it forwards: added latency (with jitter) where netem is missing.

This kernel has no `netem` qdisc, and no well-kept delaying proxy installs from PyPI or Debian
(Toxiproxy is a Go binary from neither), so the tests and benchmarks/reliability.py run this one on
the namespace "server host", in front of a real server:

    python tests/faults/delay_proxy.py --listen 198.18.0.2:0 --upstream 127.0.0.1:8080 \\
        --delay-ms 20 --jitter-ms 5 [--direction down] [--seed 0]

It prints one line, `listening HOST PORT`, once it accepts connections; SIGTERM/SIGINT end it.

What it does, like netem on one link direction: every chunk read from one side is written to the
other side `delay ± jitter` (uniform, seeded) after it was read, in order (a chunk never overtakes
the one before it, as TCP's byte stream demands). `--direction down` (default) delays what the server
sends, `up` what the client sends, `both` each direction by the full delay: with `down` or `up` the
added round trip of one request/response is the delay. Each direction of each connection has a
reader thread and a writer thread with a queue between them, so chunks in flight overlap (a
multiplexed HTTP/2 connection is delayed, not serialised) and the writer's `time.sleep` (clock_nanosleep)
releases each chunk within tens of microseconds of its due time. A half close (EOF) is forwarded
after the same delay; a reset closes both sides.
"""

from __future__ import annotations

import argparse
import queue
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

CHUNK = 65536
_EOF = b""


@dataclass(frozen=True)
class Delay:
    """Seconds added to each chunk: `delay_s` plus uniform jitter in [-jitter_s, +jitter_s]."""

    delay_s: float
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if self.delay_s < 0 or self.jitter_s < 0 or self.jitter_s > self.delay_s:
            raise ValueError(
                f"need 0 <= jitter <= delay, got delay {self.delay_s} s, jitter {self.jitter_s} s")

    def draw(self, rng: random.Random) -> float:
        return self.delay_s + (rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0)


def _pump(source: socket.socket, sink: socket.socket, delay: Delay | None,
          rng: random.Random) -> threading.Thread:
    """Forward source -> sink, each chunk released `delay` after it was read (None: at once)."""
    chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def read() -> None:
        last_due = 0.0
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = _EOF
            now = time.monotonic()
            due = now if delay is None else max(now + delay.draw(rng), last_due)  # never overtakes
            last_due = due
            chunks.put((due, data))
            if not data:
                return

    def write() -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)  # the half close, as late as the data before it
                except OSError:
                    pass
                return
            try:
                sink.sendall(data)
            except OSError:  # the other side is gone: stop both directions
                for sock in (source, sink):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    reader = threading.Thread(target=read, daemon=True)
    writer = threading.Thread(target=write, daemon=True)
    reader.start()
    writer.start()
    return writer


def _serve_connection(client: socket.socket, upstream: tuple[str, int], delays: dict[str, Delay | None],
                      seed: int) -> None:
    try:
        server = socket.create_connection(upstream, timeout=10)
    except OSError:
        client.close()
        return
    server.settimeout(None)
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writers = [
        _pump(client, server, delays["up"], random.Random(seed * 2)),
        _pump(server, client, delays["down"], random.Random(seed * 2 + 1)),
    ]
    for writer in writers:
        writer.join()
    client.close()
    server.close()


def serve(listen: tuple[str, int], upstream: tuple[str, int], delay: Delay, direction: str,
          seed: int) -> None:
    delays: dict[str, Delay | None] = {
        "up": delay if direction in ("up", "both") else None,
        "down": delay if direction in ("down", "both") else None,
    }
    family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(listen)
    listener.listen(1024)
    host, port = listener.getsockname()[:2]
    print(f"listening {host} {port}", flush=True)
    for connection in range(1, 1 << 62):
        client, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(client, upstream, delays, seed + connection),
                         daemon=True).start()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT (port 0: any free one)")
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT of the real server")
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--direction", choices=("down", "up", "both"), default="down")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        delay = Delay(args.delay_ms / 1e3, args.jitter_ms / 1e3)
    except ValueError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(args.listen, args.upstream, delay, args.direction, args.seed)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
