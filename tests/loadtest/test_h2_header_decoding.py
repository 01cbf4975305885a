"""The HTTP/2 gRPC client remembers decoded header blocks only while the server's HPACK table stays as
it was: its answers are always what a plain decoder would read, also when the table changes."""

from __future__ import annotations

import hpack
import numpy as np

from loadtest._h2grpc import HeaderDecoder


def test_remembered_blocks_decode_as_a_fresh_decoder_would_through_table_changes() -> None:
    rng = np.random.default_rng(5)
    encoder = hpack.Encoder()
    encoder.header_table_size = 256  # small: entries get evicted too
    plain, remembering = hpack.Decoder(), HeaderDecoder()
    for step in range(400):
        headers = [(":status", "200"), ("content-type", "application/grpc")]
        if rng.random() < 0.2:  # now and then a new literal (indexed: the table changes)
            headers.append((f"x-trace-{rng.integers(0, 30)}", str(rng.integers(0, 5))))
        trailers = [("grpc-status", str(rng.choice([0, 0, 0, 3]))), ("grpc-message", "m" * int(step % 3))]
        for block in (encoder.encode(headers), encoder.encode(trailers)):
            expected = [(bytes(n), bytes(v)) for n, v in plain.decode(block, raw=True)]
            assert remembering.decode(block) == expected
