"""Distinct and repeated inputs for the cache experiments (no network, no servers).

Fresh inputs are pooled bodies with the first value's low mantissa bits set to a per-stream tag:
every protocol's body still decodes to the pooled input except that one value, and no two fresh
inputs of one run are the same bytes. The repeat share is the fraction of requests that resend one.
"""

from __future__ import annotations

import base64
from collections import Counter

import numpy as np
import orjson
import pytest

import inferload_protos as protos
from loadtest import FreshInputs, RepeatingChoice, ZipfChoice, encode_body, make_inputs

FEATURES, BATCH = 64, 2
COMBINATIONS = [(s, p) for s in ("tfserving", "torchserve") for p in ("rest-json", "rest-binary", "grpc")]


def decode(server: str, protocol: str, body: bytes) -> np.ndarray:
    """The float32 [batch, features] inputs a server would read from `body`."""
    if protocol == "rest-json":
        return np.array(orjson.loads(body)["instances"], dtype=np.float32)
    if (server, protocol) == ("tfserving", "rest-binary"):
        rows = orjson.loads(body)["instances"]
        return np.stack([np.frombuffer(base64.b64decode(row["b64"]), "<f4") for row in rows])
    if protocol == "rest-binary":
        return np.frombuffer(body, "<f4").reshape(BATCH, FEATURES)
    if server == "tfserving":
        request = protos.load("tfserving_predict_pb2").PredictRequest()
        request.ParseFromString(body)
        return np.frombuffer(request.inputs["x"].tensor_content, "<f4").reshape(BATCH, FEATURES)
    request = protos.load("inference_pb2").PredictionsRequest()
    request.ParseFromString(body)
    return np.frombuffer(request.input["data"], "<f4").reshape(BATCH, FEATURES)


@pytest.mark.parametrize(("server", "protocol"), COMBINATIONS)
def test_fresh_inputs_are_distinct_and_decode_to_the_pool_but_one_value(server: str, protocol: str) -> None:
    inputs = make_inputs(FEATURES, BATCH, 3, seed=5)
    pool = [encode_body(server, protocol, x) for x in inputs]
    fresh = FreshInputs(pool, server=server, protocol=protocol, batch=BATCH, features=FEATURES, stream=2)
    made = [fresh.body(n) for n in range(600)]
    assert len(set(made)) == 600
    assert fresh.body(123) == made[123]  # a repeat resends the very same bytes
    other_stream = FreshInputs(pool, server=server, protocol=protocol, batch=BATCH, features=FEATURES,
                               stream=3)
    assert not set(made) & {other_stream.body(n) for n in range(600)}
    for n in (0, 1, 5, 599):
        decoded, original = decode(server, protocol, made[n]).ravel(), inputs[n % 3].ravel()
        assert np.array_equal(decoded[1:], original[1:])
        assert decoded[0] != original[0] and np.isfinite(decoded[0])
        assert np.sign(decoded[0]) == np.sign(original[0]) and 0.5 <= abs(decoded[0] / original[0]) <= 2


@pytest.mark.parametrize("share", [0.0, 0.5, 0.9, 1.0])
def test_the_repeat_share_is_the_fraction_of_resent_inputs(share: float) -> None:
    """n = 4000 draws: the repeat count is binomial(n - 1, share); allow 4 standard deviations."""
    pool = [encode_body("torchserve", "rest-binary", x) for x in make_inputs(FEATURES, BATCH, 4, seed=1)]
    fresh = FreshInputs(pool, server="torchserve", protocol="rest-binary", batch=BATCH, features=FEATURES,
                        stream=0)
    choose = RepeatingChoice(fresh, share, seed=9)
    n = 4000
    sent = [choose() for _ in range(n)]
    seen: set[bytes] = set()
    repeats = 0
    for body in sent:
        repeats += body in seen
        seen.add(body)
    assert repeats == choose.repeats
    sd = np.sqrt(n * share * (1 - share))
    assert abs(repeats - (n - 1) * share) <= 4 * sd + 1
    again = RepeatingChoice(fresh, share, seed=9)
    assert [again() for _ in range(50)] == sent[:50]  # seeded


def test_a_share_outside_zero_to_one_is_refused() -> None:
    pool = [b"\x00" * 4 * FEATURES * BATCH]
    fresh = FreshInputs(pool, server="torchserve", protocol="rest-binary", batch=BATCH, features=FEATURES,
                        stream=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RepeatingChoice(fresh, 1.5, seed=0)


def test_zipf_popularity_follows_one_over_k_to_the_s() -> None:
    """n = 20000 draws over a catalog of 50 at s = 1.2: each of the top 5 inputs' counts is within
    4 binomial standard deviations of n x p_k, and only catalog inputs are ever sent."""
    pool = [encode_body("torchserve", "rest-binary", x) for x in make_inputs(FEATURES, BATCH, 4, seed=1)]
    fresh = FreshInputs(pool, server="torchserve", protocol="rest-binary", batch=BATCH, features=FEATURES,
                        stream=0)
    choose = ZipfChoice(fresh, 1.2, 50, seed=4)
    n = 20_000
    counts = Counter(choose() for _ in range(n))
    catalog = [fresh.body(k) for k in range(50)]
    assert set(counts) <= set(catalog)
    weights = 1 / np.arange(1, 51) ** 1.2
    p = weights / weights.sum()
    for k in range(5):
        sd = np.sqrt(n * p[k] * (1 - p[k]))
        assert abs(counts[catalog[k]] - n * p[k]) <= 4 * sd, k


def test_repeat_share_and_zipf_are_one_or_the_other() -> None:
    from loadtest import LoadSettings

    with pytest.raises(ValueError, match="either repeat_share or zipf_s"):
        LoadSettings(server="torchserve", protocol="grpc", rate=1, duration_s=1, repeat_share=0.5, zipf_s=1.0)
