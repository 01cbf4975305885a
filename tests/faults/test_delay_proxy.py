"""The delay proxy on its own (loopback, an echo server in the test): it adds its delay, never less,
jitters within its bounds, keeps the byte stream in order and forwards a close.

Round trips go client -> proxy -> echo -> proxy -> client with `--direction down`: only the echo's
answer is delayed, so each round trip is the echo's own round trip plus the delay drawn for it.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hostile_link import PROXY

ROUND_TRIPS = 60


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A threaded TCP echo server on 127.0.0.1."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@contextmanager
def proxy(echo_port: int, *args: str) -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, str(PROXY), "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{echo_port}",
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        words = process.stdout.readline().split()
        assert words[:1] == ["listening"], process.communicate(timeout=10)[1]
        yield int(words[2])
    finally:
        process.terminate()
        process.wait(timeout=10)


def round_trips_ms(port: int, count: int = ROUND_TRIPS) -> list[float]:
    """`count` one-byte echoes, one after the other on one connection, in milliseconds each."""
    times = []
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.perf_counter()
            conn.sendall(b"x")
            assert conn.recv(16) == b"x"
            times.append((time.perf_counter() - start) * 1e3)
    return times


def test_every_answer_comes_back_the_delay_later_never_sooner(echo_port: int) -> None:
    with proxy(echo_port, "--delay-ms", "0") as port:
        direct = statistics.median(round_trips_ms(port))
    with proxy(echo_port, "--delay-ms", "25") as port:
        delayed = round_trips_ms(port)
    assert min(delayed) >= 25.0  # released no sooner than read + delay, so never under it
    # the median adds the delay and little else (2 shared cores: a few ms of scheduling slack)
    assert statistics.median(delayed) - direct == pytest.approx(25.0, abs=3.0)


def test_jitter_spreads_the_delay_over_its_bounds(echo_port: int) -> None:
    with proxy(echo_port, "--delay-ms", "30", "--jitter-ms", "10", "--seed", "3") as port:
        delayed = sorted(round_trips_ms(port, 100))
    assert delayed[0] >= 20.0  # delay - jitter at the least
    # uniform in [20, 40] ms: the 10th and 90th percentiles near 22 and 38
    assert delayed[10] < 25.0
    assert delayed[89] > 35.0


def test_jittered_chunks_keep_the_byte_stream_in_order(echo_port: int) -> None:
    sent = b"".join(f"{n:06d}".encode() for n in range(2000))
    received = bytearray()
    with proxy(echo_port, "--delay-ms", "10", "--jitter-ms", "10", "--direction", "both") as port, \
            socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(sent), 60):  # many small writes: many chunks, each its own draw
            conn.sendall(sent[start:start + 60])
        conn.shutdown(socket.SHUT_WR)
        while data := conn.recv(65536):
            received += data
    assert bytes(received) == sent


def test_a_close_is_forwarded_after_the_data(echo_port: int) -> None:
    with proxy(echo_port, "--delay-ms", "20") as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"last words")
        conn.shutdown(socket.SHUT_WR)
        start = time.perf_counter()
        data = b""
        while chunk := conn.recv(64):
            data += chunk
        assert data == b"last words"  # then EOF: the echo server's close came through
        assert time.perf_counter() - start >= 0.015


def test_a_jitter_larger_than_the_delay_is_refused(echo_port: int) -> None:
    done = subprocess.run([sys.executable, str(PROXY), "--listen", "127.0.0.1:0", "--upstream",
                           f"127.0.0.1:{echo_port}", "--delay-ms", "5", "--jitter-ms", "10"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "need 0 <= jitter <= delay" in done.stderr
