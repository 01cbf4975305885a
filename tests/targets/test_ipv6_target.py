"""IPv6: tfs-compat binds an IPv6 address (here ::1) and `inferload load` reaches it written as
`[::1]:PORT` or `http://[::1]:PORT`; TorchServe, whose config takes no IPv6 address, is refused
before anything starts with a message saying what to bind instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remote_hosts import run_inferload

from loadtest import read_run

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@pytest.mark.needs("ipv6")
def test_tf_serving_on_ipv6_loopback_is_measured_over_rest_and_grpc(small_artifacts, tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = run_inferload("serve", "up", "--servers", "tfserving", "--artifacts", str(small_artifacts.root),
                       "--bind", "::1", "--free-ports", "--state-dir", str(state), "--cpus", "all",
                       timeout=400)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        ports = json.loads((state / "servers.json").read_text())["ports"]
        assert f"http://[::1]:{ports['tfserving_rest']}/v1/models/linear:predict" in up.stdout
        for protocol, host in (("rest-json", f"http://[::1]:{ports['tfserving_rest']}"),
                               ("grpc", f"[::1]:{ports['tfserving_grpc']}")):
            out = tmp_path / protocol
            done = run_inferload(
                "load", "--server", "tfserving", "--protocol", protocol, "--host", host,
                "--metadata-url", f"http://[::1]:{ports['tfserving_rest']}", "--rate", "20",
                "--duration", "1", "--features", "1024", "--lateness-limit-ms", "200", "--out", str(out),
                "--quiet",
            )
            assert done.returncode in (0, 1), done.stderr  # 1: flagged invalid on a busy machine
            run = read_run(out)
            assert run.header.settings["host"] == "::1"
            assert set(run.records["status"]) == {"ok"} and len(run.records) >= 5
    finally:
        run_inferload("serve", "down", "--state-dir", str(state))


def test_torchserve_cannot_bind_ipv6_and_says_what_to_bind(small_artifacts, tmp_path: Path) -> None:
    done = run_inferload("serve", "up", "--artifacts", str(small_artifacts.root), "--bind", "::1",
                         "--free-ports", "--state-dir", str(tmp_path / "state"), "--cpus", "all")
    assert done.returncode == 2
    assert "TorchServe cannot bind the IPv6 address ::1" in done.stderr
    assert "bind an IPv4 address, or 0.0.0.0" in done.stderr
    assert not (tmp_path / "state" / "servers.json").exists()
