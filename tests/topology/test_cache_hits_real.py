"""nginx's cache in front of REST, keyed on the body (REAL servers: two replicas, REAL nginx, small model):
a repeated input is a hit on its second request, a distinct input never is, and the load
generator records which answers came from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from topology_helpers import FEATURES, bodies, front, predict_count, send

from loadtest import LoadSettings, encode_body, make_inputs, read_run, run_load
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


@pytest.mark.parametrize(("share", "hits_between"), [(0.0, (0.0, 0.0)), (0.6, (0.35, 0.8))])
def test_the_load_generator_records_cache_hits_at_the_repeat_share(
    cached: tuple[ReplicatedServers, int], tmp_path: Path, share: float, hits_between: tuple[float, float]
) -> None:
    """80 requests at 40/s; repeats reuse one of this run's earlier inputs, fresh inputs are new.

    Share 0: every input is distinct, so not one hit. Share 0.6: the hit ratio is the repeat share
    less repeats of inputs still in flight; bounds are ~4 binomial standard deviations (n = 80).
    """
    servers, port = cached
    settings = LoadSettings(server=servers.server, protocol="rest-binary", host="127.0.0.1", port=port,
                            rate=40.0, duration_s=2.0, warmup_s=0.0, features=FEATURES, repeat_share=share,
                            payload_seed=int(share * 100) + 17, pool_size=4)
    run_load(settings, tmp_path, progress=False)
    records = read_run(tmp_path).records
    ok = records[records["status"] == "ok"]
    assert len(ok) == len(records) > 40
    assert set(ok["cache"]) <= {"hit", "miss"}
    ratio = float((ok["cache"] == "hit").mean())
    low, high = hits_between
    assert low <= ratio <= high, f"hit ratio {ratio:.2f} at repeat share {share}"


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
