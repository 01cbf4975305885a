"""nginx's cache in front of REST, keyed on the body (REAL servers: two replicas, REAL nginx, small model):
a repeated input is a hit on its second request, a distinct input never is, and the load
generator records which answers came from the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from topology_helpers import FEATURES, bodies, front, predict_count, send

from loadtest import LoadSettings, build_pool, encode_body, make_inputs, read_run, run_load
from serving.balancer import CacheSettings, read_access_log
from serving.ports import Ports
from serving.replicas import FRONT_FIELDS, ReplicatedServers

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@pytest.fixture
def cached(replica_pair: tuple[ReplicatedServers, Ports]) -> tuple[ReplicatedServers, int]:
    """The session's two replicas (conftest.py) behind a fresh nginx with the body-keyed cache, so every
    test starts with an empty cache; yields the servers and the REST front port."""
    servers, ports = replica_pair
    front(servers, cache=CacheSettings(body_buffer_bytes=1_000_000))
    return servers, getattr(ports, FRONT_FIELDS[servers.server][0])


def served(servers: ReplicatedServers) -> float:
    """Predict requests the replicas counted themselves, all together."""
    return sum(predict_count(stack, servers.server) for stack in servers.stacks)


@pytest.mark.parametrize("protocol", ["rest-json", "rest-binary"])
def test_a_repeated_body_hits_and_a_distinct_one_misses(cached: tuple[ReplicatedServers, int],
                                                         protocol: str) -> None:
    servers, port = cached
    first, second = bodies(servers.server, protocol, 2, seed=hash(protocol) % 1000)
    before = served(servers)

    outcomes = send(servers.server, protocol, port, [first, first, second, first])

    assert [o.status for o in outcomes] == ["ok"] * 4, [o.error for o in outcomes]
    assert [o.cache for o in outcomes] == ["miss", "hit", "miss", "hit"]
    assert outcomes[1].bytes_in == outcomes[0].bytes_in  # the cached answer is the server's answer
    # only the two misses reached a replica
    assert served(servers) - before == 2


@pytest.mark.parametrize("protocol", ["rest-json", "rest-binary"])
def test_a_body_larger_than_nginx_default_buffers_is_cached_too(cached: tuple[ReplicatedServers, int],
                                                                protocol: str) -> None:
    """The cache file's header holds the whole key (the body): with nginx's 64k proxy_buffer_size a
    full-size body was never cached ("not enough for cache key"), which the small model's 4-11 KB
    bodies hid. Batch 32 of 1,024 features: 128 KiB raw, ~360 KB as JSON."""
    servers, port = cached
    (x,) = make_inputs(FEATURES, 32, 1, seed=11)
    body = encode_body(servers.server, protocol, x)
    assert len(body) > 64 * 1024

    outcomes = send(servers.server, protocol, port, [body, body])

    assert [o.status for o in outcomes] == ["ok", "ok"], [o.error for o in outcomes]
    assert [o.cache for o in outcomes] == ["miss", "hit"]


def test_grpc_through_nginx_is_never_cached(cached: tuple[ReplicatedServers, int]) -> None:
    servers, _ = cached
    assert servers.balancer is not None
    grpc_port = servers.balancer.settings.grpc_port
    body = bodies(servers.server, "grpc", 1)[0]
    outcomes = send(servers.server, "grpc", grpc_port, [body, body])
    assert [(o.status, o.cache) for o in outcomes] == [("ok", "none"), ("ok", "none")]


def bodies_as_sent(settings: LoadSettings, records: Any) -> list[bytes]:
    """Each sent request's body, in `records`' order: the generator's own seeded chooser replayed (it
    picks a body as each request is sent, in sequence order)."""
    from loadtest._payloads import repeat_choice

    choose = repeat_choice(settings, build_pool(settings).bodies, stream=0)
    assert choose is not None
    return [choose() for _ in range(len(records))]


@pytest.mark.parametrize("share", [0.0, 0.6])
def test_the_load_generator_records_cache_hits_at_the_repeat_share(
    cached: tuple[ReplicatedServers, int], tmp_path: Path, share: float
) -> None:
    """80 requests at 40/s; repeats reuse one of this run's earlier inputs, fresh inputs are new.

    Request by request: a fresh input is a miss; a repeat sent after its input's first answer came back
    is a hit; a repeat of an input still in flight may be either (nginx caches an answer once it has
    it). Share 0: every input is distinct, so not one hit. (The ratio alone depended on how long answers
    took: a busy machine's slower answers left more repeats in flight.)
    """
    servers, port = cached
    settings = LoadSettings(server=servers.server, protocol="rest-binary", host="127.0.0.1", port=port,
                            rate=40.0, duration_s=2.0, warmup_s=0.0, features=FEATURES, repeat_share=share,
                            payload_seed=int(share * 100) + 17, pool_size=4)
    run_load(settings, tmp_path, progress=False)
    records = read_run(tmp_path).records.sort_values("seq")
    assert len(records) > 40 and (records["status"] == "ok").all()
    first_answer: dict[bytes, int] = {}  # each input's earliest answer so far
    expected: list[str | None] = []
    for body, sent_ns, done_ns in zip(bodies_as_sent(settings, records), records["sent_ns"],
                                      records["done_ns"], strict=True):
        if body not in first_answer:
            expected.append("miss")
        elif first_answer[body] < sent_ns:
            expected.append("hit")
        else:
            expected.append(None)  # its input still in flight: either
        first_answer[body] = min(first_answer.get(body, done_ns), done_ns)
    got = list(records["cache"])
    assert set(got) <= {"hit", "miss"}
    assert [g for g, e in zip(got, expected, strict=True) if e] == [e for e in expected if e], got
    if share == 0.0:
        assert set(got) == {"miss"}
    else:
        assert expected.count("hit") >= 10  # repeats that had to hit were there to check


def test_each_cell_starts_with_an_empty_cache(cached: tuple[ReplicatedServers, int], tmp_path: Path) -> None:
    """Cells of one group share servers, not cached answers (the runner wraps each cell in cell_files)."""
    servers, port = cached
    body = bodies(servers.server, "rest-binary", 1, seed=991)
    assert [o.cache for o in send(servers.server, "rest-binary", port, body * 2)] == ["miss", "hit"]
    with servers.cell_files(tmp_path / "cell"):
        outcomes = send(servers.server, "rest-binary", port, body)
    assert [(o.status, o.cache) for o in outcomes] == [("ok", "miss")]
    assert "proxy_cache_key" in (tmp_path / "cell" / "nginx.conf").read_text()
    logged = read_access_log(tmp_path / "cell" / "balancer_access.jsonl")
    assert [(entry.method, entry.cache) for entry in logged] == [("POST", "MISS")]
