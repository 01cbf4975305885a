"""The generated nginx.conf: nginx itself accepts it (`nginx -t`), and it says what the design needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from serving import balancer
from serving.balancer import BalancerError, BalancerSettings, CacheSettings, Upstream, render_config

UPSTREAMS = (Upstream("127.0.0.1", 9001), Upstream("127.0.0.1", 9002))


def settings(**changes: object) -> BalancerSettings:
    grpc = (Upstream("127.0.0.1", 9101), Upstream("127.0.0.1", 9102))
    fields: dict[str, object] = dict(rest_port=18501, grpc_port=18500, rest_upstreams=UPSTREAMS,
                                     grpc_upstreams=grpc)
    fields.update(changes)
    return BalancerSettings(**fields)  # type: ignore[arg-type]


def nginx_accepts(config: BalancerSettings, prefix: Path, nginx: str) -> str:
    """Write the config (and the cache key's script) as `start` does, run `nginx -t` on it, return it."""
    for sub in ("temp", "cache"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = balancer.write_config(config, prefix)
    argv = [nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "e.log")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return conf.read_text()


@pytest.mark.parametrize("policy", ["round_robin", "least_conn"])
def test_upstreams_policy_and_grpc_over_http2(policy: str, tmp_path: Path, nginx: str) -> None:
    text = nginx_accepts(settings(policy=policy), tmp_path, nginx)
    assert ("least_conn;" in text) == (policy == "least_conn")
    assert "server 127.0.0.1:9001 max_fails=0;" in text and "server 127.0.0.1:9102 max_fails=0;" in text
    assert "listen 127.0.0.1:18500 http2" in text and "grpc_pass grpc://inferload_grpc;" in text
    assert "keepalive 64;" in text and 'proxy_set_header Connection "";' in text
    assert "client_max_body_size 1048576k;" in text
    assert f"access_log {tmp_path.resolve()}/access.jsonl inferload;" in text
    assert "$upstream_addr" in text and "$upstream_cache_status" in text
    assert "proxy_cache " not in text  # no cache unless asked for


def test_the_cache_keys_on_a_body_held_in_memory(tmp_path: Path, nginx: str) -> None:
    text = nginx_accepts(settings(cache=CacheSettings(body_buffer_bytes=4_000_000)), tmp_path, nginx)
    assert "proxy_cache_methods POST;" in text
    # the key holds the body's SHA-256 (a key over ~64 KB is never read back from nginx's cache file)
    assert "$inferload_body_sha256" in text.split("proxy_cache_key", 1)[1].splitlines()[0]
    assert "js_set $inferload_body_sha256 inferload_cache.body_sha256;" in text
    assert (tmp_path / "cache_key.js").read_text() == balancer.CACHE_KEY_SCRIPT
    assert "client_body_buffer_size 3907k;" in text  # >= 4,000,000 bytes: the body stays in memory
    assert "client_body_in_single_buffer on;" in text
    assert "add_header X-Cache-Status $upstream_cache_status always;" in text
    grpc_server = text.split("listen 127.0.0.1:18500 http2", 1)[1]
    assert "proxy_cache" not in grpc_server  # gRPC through nginx is never cached


def test_missing_nginx_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balancer.shutil, "which", lambda name: None)
    monkeypatch.setattr(balancer, "NGINX_LOCATIONS", ())
    with pytest.raises(BalancerError, match=r"nginx not found.*apt-get install nginx"):
        balancer.nginx_binary()


def test_a_cache_without_nginx_javascript_module_names_the_package(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(balancer, "NJS_MODULE_LOCATIONS", ())
    assert "proxy_cache" not in render_config(settings(), tmp_path)  # no cache: not needed
    with pytest.raises(BalancerError, match=r"JavaScript module.*apt-get install libnginx-mod-http-js"):
        render_config(settings(cache=CacheSettings(body_buffer_bytes=1_000_000)), tmp_path)


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(BalancerError, match="round_robin, least_conn"):
        settings(policy="random")
