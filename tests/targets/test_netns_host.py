"""The namespace "server host" helper: reachable across its veth link, and always removed again.

These tests make their own namespaces under a prefix of their own (`<prefix>x`), so removing stale
ones never touches the session's server host.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
import urllib.request

import pytest
from netns import BENCHMARK_NET, create, default_prefix, exists, netns_host, remove_stale

pytestmark = pytest.mark.needs("netns")
PREFIX = f"{default_prefix()}x"


def test_a_server_inside_answers_at_the_namespace_address_from_the_root_side() -> None:
    with netns_host(PREFIX) as host:
        assert ipaddress.ip_address(host.address) in BENCHMARK_NET
        assert ipaddress.ip_address(host.local_address) in BENCHMARK_NET
        server = host.popen([sys.executable, "-m", "http.server", "--bind", host.address, "8765"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            status = None
            for _ in range(100):  # the interpreter needs a moment on a busy machine
                try:
                    with urllib.request.urlopen(f"http://{host.address}:8765/", timeout=2) as response:
                        status = response.status
                    break
                except OSError:
                    server.poll()
                    assert server.returncode is None, "the server inside the namespace exited"
                    time.sleep(0.1)
            assert status == 200
            assert server.pid in host.pids()  # `ip netns exec` runs it inside the namespace
        finally:
            server.terminate()
            server.wait(timeout=10)


def test_loopback_is_up_inside_and_the_host_is_gone_afterwards() -> None:
    with netns_host(PREFIX) as host:
        links = host.run(["ip", "-o", "link", "show", "lo"], capture_output=True, text=True, check=True)
        assert "UP" in links.stdout
        assert exists(host)
    assert not exists(host)


def test_the_host_is_removed_when_the_test_fails_inside_it_even_with_processes_running() -> None:
    with pytest.raises(RuntimeError, match="boom"), netns_host(PREFIX) as host:
        sleeper = host.popen(["sleep", "300"])
        raise RuntimeError("boom")
    assert not exists(host)
    assert sleeper.wait(timeout=20) != 0  # ended by the teardown, not left running


def test_leftovers_of_a_killed_run_are_removed_before_a_new_host_is_made() -> None:
    left = create(PREFIX, 3)  # as if the process that made it had been killed
    assert exists(left)
    removed = remove_stale(PREFIX)
    assert left.name in removed
    assert not exists(left)
