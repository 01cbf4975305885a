"""The Locust web UI can start load against any host: it listens on this machine only unless told, and
`--web-login` puts Locust's own login page in front of it, with a password from a file or the
environment (never a flag value). Real Locust processes with our locustfile, on loopback."""

from __future__ import annotations

import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-staple"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _locust(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--web-port", str(port), *args],
        cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_listening(process: subprocess.Popen[str], port: int) -> list[str]:
    """The addresses the web UI listens on (as the kernel reports them)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        found = [c.laddr.ip for c in psutil.Process(process.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("the web UI did not start")


def test_the_web_ui_listens_on_loopback_unless_told() -> None:
    with _locust() as (process, port):
        assert _wait_listening(process, port) == ["127.0.0.1"]


def test_web_login_keeps_out_everyone_without_the_password(tmp_path: Path) -> None:
    password_file = tmp_path / "web-password"
    password_file.write_text(PASSWORD + "\n")
    with _locust("--web-login", "--web-password-file", str(password_file)) as (process, port):
        _wait_listening(process, port)
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        with browser.open(f"{base}/stats/requests", timeout=10) as page:  # an API view: to the login page
            assert page.url.startswith(f"{base}/login")

        def log_in(user: str, password: str) -> str:
            form = urllib.parse.urlencode({"username": user, "password": password}).encode()
            with browser.open(f"{base}/inferload-login", data=form, timeout=10) as page:
                return str(page.url)

        assert log_in("locust", "a wrong password").startswith(f"{base}/login")
        assert log_in("someone", PASSWORD).startswith(f"{base}/login")
        with browser.open(f"{base}/stats/requests", timeout=10) as page:
            assert page.url.startswith(f"{base}/login")  # still out
        log_in("locust", PASSWORD)
        with browser.open(f"{base}/stats/requests", timeout=10) as page:
            assert page.url == f"{base}/stats/requests" and b'"stats"' in page.read()


def test_web_login_without_a_password_refuses_to_start() -> None:
    env = {"INFERLOAD_WEB_PASSWORD": "", "INFERLOAD_WEB_PASSWORD_FILE": ""}
    with _locust("--web-login", env=env) as (process, _):
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "--web-login needs the web UI's password" in output
