"""The REST front end reads a body in one piece, however many chunks it arrives in, and answers a body
over its limit with 413 and a message naming the limit (checked with the limit lowered; the real one
is 1 GiB). The predictor here is a stand-in that records what it was given: this tests the reading."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from serving.tfs_compat import rest
from serving.tfs_compat.errors import invalid_argument
from serving.tfs_compat.metrics import Metrics

URL = "/v1/models/linear:predict"


class _Seen:
    """Stands in for json_codec.decode_predict_request: keeps the body and refuses it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, body: bytes, model: object) -> None:
        self.bodies.append(bytes(body))
        raise invalid_argument("stand-in decoder")


def _post(body: bytes, chunk: int) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        predictor = SimpleNamespace(model=SimpleNamespace(name="linear", version=1))
        app: web.Application = rest.make_app(predictor, threads=1, metrics=Metrics())  # type: ignore[arg-type]

        async def chunks():  # noqa: ANN202 - an async generator of the body's pieces
            for start in range(0, len(body), chunk):
                yield body[start : start + chunk]

        async with TestClient(TestServer(app)) as client:
            response = await client.post(URL, data=chunks(), headers={"Content-Type": "application/json"})
            return response.status, await response.text()

    return asyncio.run(go())


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> _Seen:
    recorder = _Seen()
    monkeypatch.setattr(rest.json_codec, "decode_predict_request", recorder)
    monkeypatch.setattr(rest, "MAX_BODY_BYTES", 100_000)
    return recorder


@pytest.mark.parametrize("chunk", [7, 4096, 100_000])
def test_a_chunked_body_reaches_the_decoder_whole(seen: _Seen, chunk: int) -> None:
    body = bytes(range(256)) * 300  # 76,800 bytes: under the lowered limit
    status, text = _post(body, chunk)
    assert status == 400 and "stand-in decoder" in text
    assert seen.bodies == [body]


def test_a_body_over_the_limit_is_413_naming_the_limit(seen: _Seen) -> None:
    status, text = _post(b"x" * 100_001, 4096)
    assert status == 413
    assert "limit of 100000 bytes" in text and "smaller batches" in text
    assert seen.bodies == []
