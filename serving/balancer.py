"""A real nginx in front of server replicas: load balancing for REST and gRPC, and an optional cache.

Why nginx: it is what an operator puts in front of model servers. Per group of cells we generate one
nginx.conf (kept with each cell's results), start nginx as a foreground child process with its own
prefix, temp and cache directories under the state dir, wait until it answers, and stop it again.

- REST: `upstream` with the chosen policy (round robin or least_conn) and kept-alive upstream
  connections; bodies up to `client_max_body_size`.
- gRPC: `listen ... http2` (cleartext, prior knowledge, as grpcio speaks it) and `grpc_pass` to a
  second upstream. gRPC through nginx is never cached.
- Cache (REST only): `proxy_cache` keyed on the request body. nginx only has the body in
  `$request_body` when it fits `client_body_buffer_size`; a larger body would be written to a temp
  file, `$request_body` would be empty and every request would share one key. So the buffer is sized
  for the largest body and the matrix refuses bodies above it (inferload/experiments.py).
- The access log (JSON lines) names the upstream that answered and the cache status of each request.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from serving.processes import LaunchSpec, ProcessHandle, log_tail, spawn, stop

Policy = Literal["round_robin", "least_conn"]
POLICIES: tuple[str, ...] = ("round_robin", "least_conn")
CONFIG_FILE = "nginx.conf"
ACCESS_LOG = "access.jsonl"
HEALTH_PATH = "/inferload-balancer-health"
CACHE_HEADER = "X-Cache-Status"
# Error responses nginx itself produces when an upstream fails: counted as errors by the generator.
BALANCER_ERRORS = (502, 503, 504)
NGINX_LOCATIONS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")  # sbin is often not on a user's PATH
NGINX_PACKAGE_HINT = "install the nginx package (Debian/Ubuntu: `apt-get install nginx`) or put it on PATH"


class BalancerError(RuntimeError):
    """nginx is missing, its config is refused, or it did not come up; the message says what to do."""


@dataclass(frozen=True)
class Upstream:
    """One replica's address for one protocol."""

    host: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class CacheSettings:
    """nginx proxy_cache in front of REST: `body_buffer_bytes` must hold the largest request body."""

    body_buffer_bytes: int
    max_size_mb: int = 1024
    valid_s: int = 3600


@dataclass(frozen=True)
class BalancerSettings:
    """What one nginx instance listens on and forwards to."""

    rest_port: int
    grpc_port: int
    rest_upstreams: tuple[Upstream, ...]
    grpc_upstreams: tuple[Upstream, ...]
    policy: Policy = "round_robin"
    listen_host: str = "127.0.0.1"
    max_body_bytes: int = 1024 * 1024 * 1024
    cache: CacheSettings | None = None
    keepalive: int = 64
    timeout_s: int = 120
    extra_notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise BalancerError(f"unknown balancer policy {self.policy!r}: choose from {', '.join(POLICIES)}")
        if not self.rest_upstreams or not self.grpc_upstreams:
            raise BalancerError("a balancer needs at least one upstream replica for REST and for gRPC")
        if self.cache is not None and self.cache.body_buffer_bytes < 1:
            raise BalancerError("cache.body_buffer_bytes must be positive")


def nginx_binary() -> str:
    """The nginx executable, or a BalancerError naming the package to install."""
    found = shutil.which("nginx") or next((p for p in NGINX_LOCATIONS if Path(p).is_file()), None)
    if found is None:
        raise BalancerError(f"nginx not found: the balancer and cache need it: {NGINX_PACKAGE_HINT}")
    return found


def _upstream_block(name: str, policy: Policy, upstreams: Sequence[Upstream], keepalive: int) -> str:
    lines = [f"    upstream {name} {{"]
    if policy == "least_conn":
        lines.append("        least_conn;")
    lines += [f"        server {u.address} max_fails=0;" for u in upstreams]
    lines += [f"        keepalive {keepalive};", "        keepalive_requests 1000000;", "    }"]
    return "\n".join(lines)


def render_config(settings: BalancerSettings, prefix: Path) -> str:
    """The whole nginx.conf for `settings`, with every path under `prefix` (absolute)."""
    prefix = prefix.resolve()
    listen = f"[{settings.listen_host}]" if ":" in settings.listen_host else settings.listen_host
    body_limit = f"{max(1, -(-settings.max_body_bytes // 1024))}k"
    cache = settings.cache
    log_format = (
        "log_format inferload escape=json '{\"t\":\"$msec\",\"method\":\"$request_method\","
        "\"uri\":\"$uri\",\"status\":$status,\"bytes_in\":$request_length,\"bytes_out\":$bytes_sent,"
        "\"upstream\":\"$upstream_addr\",\"upstream_status\":\"$upstream_status\","
        "\"cache\":\"$upstream_cache_status\",\"request_time\":$request_time,"
        "\"upstream_time\":\"$upstream_response_time\",\"server_port\":$server_port}';"
    )
    http_cache = ""
    rest_cache = ""
    body_buffer = "128k"
    if cache is not None:
        body_buffer = f"{max(1, -(-cache.body_buffer_bytes // 1024))}k"
        http_cache = (
            f"    proxy_cache_path {prefix}/cache levels=1:2 keys_zone=inferload:64m "
            f"max_size={cache.max_size_mb}m inactive=1h use_temp_path=off;\n"
            "    map $request_method $inferload_skip_cache { POST 0; default 1; }\n"
        )
        rest_cache = (
            "            proxy_cache inferload;\n"
            "            proxy_cache_methods POST;\n"
            "            # the body is the input: requests with the same body get the same answer\n"
            "            proxy_cache_key \"$request_method|$request_uri|$content_type|$request_body\";\n"
            f"            proxy_cache_valid 200 {cache.valid_s}s;\n"
            "            proxy_cache_bypass $inferload_skip_cache;\n"
            "            proxy_no_cache $inferload_skip_cache;\n"
            "            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;\n"
            f"            add_header {CACHE_HEADER} $upstream_cache_status always;\n"
        )
    # Started as root, nginx's workers would become `nobody`, who cannot reach a state dir under a
    # private directory (e.g. pytest's /tmp/pytest-of-root): they keep the starting user instead.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# Generated by inferload (serving/balancer.py) for one group of cells.
{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 8192;
}}
http {{
    {log_format}
    access_log {prefix}/{ACCESS_LOG} inferload;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    client_max_body_size {body_limit};
    client_body_buffer_size {body_buffer};
    client_body_in_single_buffer on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    http2_body_preread_size 1m;
    proxy_buffer_size 64k;
    proxy_buffers 64 64k;
{http_cache}
{_upstream_block("inferload_rest", settings.policy, settings.rest_upstreams, settings.keepalive)}

{_upstream_block("inferload_grpc", settings.policy, settings.grpc_upstreams, settings.keepalive)}

    server {{
        listen {listen}:{settings.rest_port} reuseport;
        location = {HEALTH_PATH} {{
            access_log off;
            return 200 "ok\\n";
        }}
        location / {{
            proxy_pass http://inferload_rest;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_read_timeout {settings.timeout_s}s;
            proxy_send_timeout {settings.timeout_s}s;
            proxy_next_upstream off;
{rest_cache}        }}
    }}

    server {{
        listen {listen}:{settings.grpc_port} http2 reuseport;
        location / {{
            grpc_pass grpc://inferload_grpc;
            grpc_read_timeout {settings.timeout_s}s;
            grpc_send_timeout {settings.timeout_s}s;
            grpc_next_upstream off;
            grpc_buffer_size 1m;
        }}
    }}
}}
"""


@dataclass
class Balancer:
    """A running nginx: its pid, config and log files. `stop()` is idempotent."""

    settings: BalancerSettings
    prefix: Path
    handle: ProcessHandle

    @property
    def config_path(self) -> Path:
        return self.prefix / CONFIG_FILE

    @property
    def access_log(self) -> Path:
        return self.prefix / ACCESS_LOG

    @property
    def pid(self) -> int:
        return self.handle.pid

    def alive(self) -> bool:
        return self.handle.alive()

    def stop(self) -> None:
        stop(self.handle, name="nginx", ports=(self.settings.rest_port, self.settings.grpc_port),
             host=self.settings.listen_host)


def start(settings: BalancerSettings, prefix: Path, *, timeout_s: float = 30.0) -> Balancer:
    """Write nginx.conf under `prefix`, check it with `nginx -t`, start nginx and wait until it answers."""
    import subprocess

    binary = nginx_binary()
    prefix = Path(prefix).resolve()
    stop_leftover(prefix)
    for sub in ("temp/body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi", "cache"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    config = prefix / CONFIG_FILE
    config.write_text(render_config(settings, prefix))
    argv = (binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log"))
    checked = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode != 0:
        raise BalancerError(f"nginx refused the generated config {config}: {checked.stderr.strip()}")
    spec = LaunchSpec(name="nginx", argv=argv, log_path=prefix / "nginx.log", cwd=prefix)
    handle, _ = spawn(spec)
    balancer = Balancer(settings, prefix, handle)
    deadline = time.monotonic() + timeout_s
    while True:
        problem = health(settings)
        if problem is None:
            return balancer
        if not handle.alive():
            raise BalancerError(f"nginx exited during start-up: {problem}\n  error log:\n"
                                f"{log_tail(prefix / 'error.log')}\n  output:\n{log_tail(spec.log_path)}")
        if time.monotonic() >= deadline:
            balancer.stop()
            raise BalancerError(f"nginx did not answer within {timeout_s:.0f} s: {problem}")
        time.sleep(0.1)


def stop_leftover(prefix: Path) -> bool:
    """Stop an nginx of this prefix left behind by a killed run (it would hold the ports); True if one ran."""
    import psutil

    try:
        pid = int((prefix / "nginx.pid").read_text().strip())
        proc = psutil.Process(pid)
        if "nginx" not in proc.name() or str(prefix) not in " ".join(proc.cmdline()):
            return False
    except (OSError, ValueError, psutil.Error):
        return False
    stop(ProcessHandle(pid, proc.create_time()), name="nginx (left over)")
    return True


def restart_with_empty_cache(running: Balancer, *, timeout_s: float = 30.0) -> Balancer:
    """Stop nginx, drop every cached answer, start it again with the same config.

    Each cell starts cold: a later cell's distinct inputs may be byte-equal to an earlier cell's (the
    load generator's inputs depend on the seed, not on the cell), and must not hit its answers.
    """
    running.stop()
    shutil.rmtree(running.prefix / "cache", ignore_errors=True)
    return start(running.settings, running.prefix, timeout_s=timeout_s)


def health(settings: BalancerSettings) -> str | None:
    """None when nginx answers its health location on the REST port and accepts on the gRPC port."""
    import urllib.request

    host = f"[{settings.listen_host}]" if ":" in settings.listen_host else settings.listen_host
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.rest_port}{HEALTH_PATH}", timeout=2) as r:
            if r.status != 200:
                return f"health location answered {r.status}"
        with socket.create_connection((settings.listen_host, settings.grpc_port), timeout=2):
            pass
    except OSError as exc:
        return f"not answering yet ({exc})"
    return None


@dataclass(frozen=True)
class AccessEntry:
    """One request as nginx logged it."""

    t: float
    method: str
    uri: str
    status: int
    upstream: str
    cache: str
    request_time: float
    server_port: int


def read_access_log(path: Path | str, *, since: int = 0) -> list[AccessEntry]:
    """Entries of an access log written by this module's config, from byte offset `since`."""
    entries = []
    with open(path, "rb") as handle:
        handle.seek(since)
        for line in handle:
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line being written
            entries.append(AccessEntry(
                t=float(data["t"]), method=data["method"], uri=data["uri"], status=int(data["status"]),
                upstream=data["upstream"], cache=data["cache"], request_time=float(data["request_time"]),
                server_port=int(data["server_port"]),
            ))
    return entries


def requests_per_upstream(entries: Sequence[AccessEntry]) -> Counter[str]:
    """How many requests each upstream address answered (`host:port`; cache hits name none)."""
    counts: Counter[str] = Counter()
    for entry in entries:
        for address in entry.upstream.split(", "):
            if address and address != "-":
                counts[address] += 1
    return counts
