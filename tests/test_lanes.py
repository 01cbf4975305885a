"""The test lanes' rules (tests/lanes.py, tests/capabilities.py): a test that starts a server must say so,
and a capability the machine lacks skips a test unless INFERLOAD_REQUIRE names it, then it fails.
The session-level checks run in a pytest of their own, on test files written here."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lanes import imports_locust, server_start

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.mark.parametrize(("argv", "started"), [
    ([sys.executable, "-m", "serving.tfs_compat", "--port=1", "--model_base_path=/m"], "tfs-compat"),
    ([sys.executable, "-m", "serving.tfs_compat", "--version"], None),
    ([sys.executable, "-m", "ts.model_server", "--start", "--foreground", "--ncs"], "torchserve"),
    (["torchserve", "--stop"], None),
    (["/usr/sbin/nginx", "-p", "/tmp/x", "-c", "/tmp/x/nginx.conf"], "nginx"),
    (["/usr/sbin/nginx", "-p", "/tmp/x", "-c", "/tmp/x/nginx.conf", "-t", "-q"], None),
    (["/opt/tritonserver/bin/tritonserver", "--model-repository=/m"], "tritonserver"),
    (["ip", "netns", "exec", "ilns-h1", sys.executable, "-m", "inferload", "serve", "up", "--bind", "x"],
     "inferload serve up"),
    ([sys.executable, "-m", "inferload", "serve", "down", "--state-dir", "s"], None),
    (["taskset", "--cpu-list", "0", ".venv/bin/inferload", "run", "experiments/smoke.yaml"], "inferload run"),
    ([".venv/bin/inferload", "run", "experiments/smoke.yaml", "--dry-run"], None),
    ([sys.executable, "-m", "inferload", "demo", "--smoke"], "inferload demo"),
    ([sys.executable, "-m", "inferload", "load", "--server", "tfserving", "--rate", "10"], None),
    ("nginx -t", None),  # a shell string is one word: its program is not looked up
    ([b"/usr/bin/python3", b"-m", b"serving.tfs_compat", b"--port=9"], "tfs-compat"),
])
def test_a_command_line_says_which_server_it_starts(argv: list[str] | str, started: str | None) -> None:
    assert server_start(argv) == started


def lanes_environment(**env: str) -> dict[str, str]:
    """This environment for a pytest of its own: without INFERLOAD_REQUIRE, with tests/ and the repository
    importable (the lanes plugin, the packages), plus `env`."""
    environment = {name: value for name, value in os.environ.items() if name != "INFERLOAD_REQUIRE"}
    environment.update(PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]), **env)
    return environment


def run_pytest(
    tmp_path: Path, test_text: str, conftest: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """pytest on one test file in `tmp_path`, with the lanes' rules loaded as tests/conftest.py loads them."""
    (tmp_path / "test_case.py").write_text(textwrap.dedent(test_text))
    (tmp_path / "conftest.py").write_text(textwrap.dedent(conftest) + '\npytest_plugins = ["lanes"]\n')
    environment = lanes_environment(**env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", os.devnull, "-W", "ignore::pytest.PytestConfigWarning", str(tmp_path)],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )


START_A_SERVER = """
    import subprocess, sys
    import pytest

    {marker}
    def test_it():
        subprocess.run([sys.executable, "-m", "serving.tfs_compat", "--model_base_path=/nowhere"], timeout=60)
"""


def test_a_test_that_starts_a_server_without_the_marker_fails_at_the_start(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, START_A_SERVER.format(marker=""))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "starts tfs-compat but is not marked @pytest.mark.servers" in done.stdout


def test_the_same_test_with_the_marker_may_start_it(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, START_A_SERVER.format(marker="@pytest.mark.servers"))
    assert done.returncode == 0, done.stdout + done.stderr  # the start fails (no model), the test does not


def test_a_server_fixture_without_the_marker_stops_the_session_at_collection(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, """
        import pytest

        @pytest.fixture
        def small_stack():
            raise AssertionError("never set up: collection refuses the test first")

        def test_uses_it(small_stack):
            pass
    """)
    assert done.returncode == 4, done.stdout + done.stderr  # a usage error
    assert "test_case.py::test_uses_it (uses small_stack)" in done.stdout + done.stderr


NEVER_HERE = """
    import capabilities
    capabilities.CAPABILITIES["never-here"] = lambda: "this machine never has it"
"""
NEEDS_IT = """
    import pytest

    @pytest.mark.needs("never-here")
    def test_marked():
        pass

    def test_called():
        from capabilities import need
        need("never-here")
"""


def test_a_missing_capability_skips(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, NEEDS_IT, conftest=NEVER_HERE)
    assert done.returncode == 0 and "2 skipped" in done.stdout, done.stdout + done.stderr


def test_a_missing_capability_that_inferload_require_names_fails(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, NEEDS_IT, conftest=NEVER_HERE, INFERLOAD_REQUIRE="nginx,never-here")
    outcome = done.stdout.splitlines()[-1]  # the marker fails the setup (an error), the call the test
    assert done.returncode == 1 and "1 failed" in outcome and "1 error" in outcome, done.stdout + done.stderr
    assert done.stdout.count("INFERLOAD_REQUIRE requires never-here, but: this machine never has it") >= 2


def test_an_unknown_name_in_inferload_require_stops_the_session(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, NEEDS_IT, conftest=NEVER_HERE, INFERLOAD_REQUIRE="ngnix")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "INFERLOAD_REQUIRE names unknown capabilities ['ngnix']" in done.stdout + done.stderr


@pytest.mark.parametrize(("source", "locust"), [
    ("import locust\n", True),
    ("from locust import HttpUser\n", True),
    ("from loadtest._locust_fail_fast import FirstRequests\n", True),
    ("from loadtest.locustfile import TfServingGrpcUser\n", True),
    ("from locust_runs import web_ui\n", False),  # a test helper that runs Locust in subprocesses
    ("import subprocess  # runs `locust -f loadtest/` in a subprocess\n", False),
])
def test_modules_that_import_locust_in_process_are_kept_off_xdist_workers(tmp_path: Path, source: str,
                                                                          locust: bool) -> None:
    module = tmp_path / "test_module.py"
    module.write_text("from __future__ import annotations\n\n" + source)
    assert imports_locust(module) is locust


AREA_TESTS = """
    import os, time
    import pytest

    @pytest.mark.{marker}
    @pytest.mark.parametrize("n", range({count}))
    def test_{name}(n):
        with open(os.environ["RAN_LOG"], "a") as log:
            log.write(f"{{os.environ['PYTEST_XDIST_WORKER']}} {area} {name} {{time.monotonic_ns()}}\\n")
        time.sleep(0.05)
"""


def test_each_areas_server_tests_run_on_one_worker_before_the_quick_tests(tmp_path: Path) -> None:
    """`make test`'s workers (here -n 2, --dist loadgroup, tests/lanes.py's scheduler): the server tests of
    an area stay on one worker, so its session hosts start once, and each worker starts with an area."""
    for area in ("alpha", "beta"):
        (tmp_path / area).mkdir()
        (tmp_path / area / f"test_{area}.py").write_text(textwrap.dedent(
            AREA_TESTS.format(marker="servers", count=3, area=area, name="serves")))
    (tmp_path / "test_quick.py").write_text(textwrap.dedent(
        AREA_TESTS.format(marker="parametrize('x', [0])", count=6, area="top", name="quick").replace(
            "def test_quick(n)", "def test_quick(n, x)")))
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["lanes"]\n')
    log = tmp_path / "ran.log"
    environment = lanes_environment(RAN_LOG=str(log))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c",
         os.devnull, "-W", "ignore::pytest.PytestConfigWarning", "-n", "2", "--dist", "loadgroup",
         str(tmp_path)],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = sorted((int(t), worker, area) for worker, area, _, t in (line.split() for line in
                                                                    log.read_text().splitlines()))
    assert len(runs) == 12
    workers_of = {area: {w for _, w, a in runs if a == area} for area in ("alpha", "beta")}
    assert all(len(workers) == 1 for workers in workers_of.values()), workers_of
    first = {}
    for _, worker, area in runs:
        first.setdefault(worker, area)
    assert set(first.values()) <= {"alpha", "beta"}, f"a worker began with a quick test: {first}"


def test_off_the_workers_only_modules_that_can_hold_such_tests_are_collected(tmp_path: Path) -> None:
    """`--off-workers`: a module that marks tests `alone` or imports Locust is collected, any other is
    not even imported (the lanes beside the workers would otherwise collect two thousand tests to run a
    few dozen)."""
    (tmp_path / "test_alone.py").write_text("import pytest\n\n@pytest.mark.alone\ndef test_a():\n    pass\n")
    (tmp_path / "test_other.py").write_text("raise SystemExit('imported')\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["lanes"]\n')
    environment = lanes_environment()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), "-c", os.devnull, "-W", "ignore::pytest.PytestConfigWarning", "--off-workers",
         str(tmp_path)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_alone.py::test_a" in done.stdout and "test_other" not in done.stdout
