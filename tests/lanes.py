"""The test lanes and their rules (hooks loaded by tests/conftest.py).

- `make test-fast` runs `-m "not servers and not slow"`: no server starts.
- `servers` marks every test that starts a server process (TF Serving or tfs-compat, TorchServe,
  Triton, nginx), itself or through a fixture or `inferload serve up` / `run` / `demo`. Two checks keep
  the marker honest: at collection, a test that uses a fixture of SERVER_FIXTURES without the marker
  stops the session; while tests run, a test without the marker that starts a server process fails
  at that start (an audit hook on subprocess.Popen reads the command line).
- `slow` marks a test over ~20 s; tests that took longer without it are listed at the end of the run.
- `needs(...)` names capabilities the machine may lack (tests/capabilities.py): skipped where one is
  missing, failed instead where INFERLOAD_REQUIRE names it.
- `alone` marks a test that measures the machine or keeps a schedule: CPU taken by other work,
  calibration flags or their absence, achieved rates, timing bounds, the smoke report that CI re-checks
  with no allowance for a busy machine. `make test` runs these one by one in a pytest of their own
  (`--off-workers`: it collects only the modules that mark `alone` or import Locust) at normal
  priority, while every other lane runs as idle work (tests/idle_lane.py: an idle cpu cgroup and
  SCHED_IDLE): the other lanes take only the CPU time the alone tests leave, and the machine watch
  leaves such work out of its figures.
- Everything else runs on 3 pytest-xdist workers (the Makefile's TEST_WORKERS; `make test` and `make
  test-fast`, `--dist loadgroup` with this module's scheduler): the modules of an area (tests/<area>/)
  that hold server or slow tests form one unit that one worker runs, so the area's session hosts (a
  namespace host, a replica pair, a configured Triton) start once; the units with the most tests go first
  and the tests without servers, one by one, fill in behind them. Each worker names its own network
  namespaces (tests/netns.py) and its servers take free ports.
- The modules that import Locust never run on a worker: its import monkey-patches the interpreter with
  gevent, which deadlocks an xdist worker (its work queue waits on a real thread's event). A worker skips
  them at collection (`imports_locust`, a scan of the module's import lines), their tests carry the
  `locust_in_process` marker, and a pytest of their own runs them beside the workers (`--off-workers
  -m "locust_in_process and not alone"`). A worker that finds Locust imported anyway stops the session
  and names the modules it collected.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

import pytest
from capabilities import need, required

# Fixtures that start servers (or hand out a running one): a test that uses one, directly or through
# another fixture, must carry @pytest.mark.servers. Add yours here.
SERVER_FIXTURES = frozenset({
    "small_stack", "both_servers", "servers",  # the session's shared TF Serving + TorchServe + Triton
    "tfs_compat",  # tests/tfs_compat: one tfs-compat
    "replica_pair",  # tests/topology: two replicas behind nginx
    "three_hosts",  # tests/scaleout: tfs-compat in a network namespace
    "remote_servers",  # tests/targets: the servers in a network namespace
    "configured_triton",  # tests/triton: Triton with dynamic batching and the response cache
    "unready_triton",  # tests/triton: Triton whose model was unloaded
    "fault_host",  # tests/faults: TorchServe in a network namespace whose link the tests damage
})
SLOW_S = 20.0  # a test's own run (its call phase) above this wants the `slow` marker

_INFO_FLAGS = frozenset({"--help", "-h", "--version", "-v", "-V", "-t", "-T", "-s"})
_SERVER_PROGRAMS = frozenset({"tensorflow_model_server", "tritonserver", "nginx"})
_SERVER_MODULES = frozenset({"serving.tfs_compat", "serving.tfs_compat.__main__"})


def server_start(argv: Sequence[Any] | Any) -> str | None:
    """What server a command line starts, or None: it starts none (a client, a `--version`, `nginx -t`,
    `torchserve --stop`, `inferload run --dry-run`). Sees through `ip netns exec`, taskset and sudo."""
    words = [os.fsdecode(a) for a in ([argv] if isinstance(argv, str | bytes | os.PathLike) else argv)]
    names = [PurePath(w).name for w in words]
    info = _INFO_FLAGS.intersection(words)
    for index, name in enumerate(names):
        if name in _SERVER_PROGRAMS and not info:
            return name
        if name == "torchserve" and "--start" in words:
            return "torchserve"
        if name == "-m" and index + 1 < len(words):
            module = words[index + 1]
            if module == "ts.model_server" and "--start" in words:
                return "torchserve"
            if module in _SERVER_MODULES and not info:
                return "tfs-compat"
        if name == "inferload" or (name == "-m" and words[index + 1 : index + 2] == ["inferload"]):
            rest = words[index + (2 if name == "-m" else 1):]
            command = [w for w in rest if not w.startswith("-")][:2]
            if command[:2] == ["serve", "up"] or command[:1] == ["demo"]:
                return f"inferload {' '.join(command[:2] if command[0] == 'serve' else command[:1])}"
            if command[:1] == ["run"] and "--dry-run" not in rest:
                return "inferload run"
    return None


class ServerStartWithoutMarker(RuntimeError):
    """A test without @pytest.mark.servers started a server process."""


_current: pytest.Item | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "subprocess.Popen" or _current is None or _current.get_closest_marker("servers"):
        return
    started = server_start(args[1])
    if started is not None:
        raise ServerStartWithoutMarker(
            f"{_current.nodeid} starts {started} but is not marked @pytest.mark.servers: mark it (and "
            f"`slow` if it takes over {SLOW_S:g} s), so that `make test-fast` leaves it out"
        )


_slow_unmarked: list[tuple[str, float]] = []

# a module line that imports Locust, or one of loadtest's modules that import it at their top
_LOCUST_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:locust\b|loadtest\.locustfile\b|loadtest\._locust\w*)",
                            re.MULTILINE)


@functools.cache  # asked once per test item (and per node id when scheduling): read each module once
def _module_says(pattern: re.Pattern[str], path: PurePath) -> bool:
    """Does a line of this test module match `pattern`? (The lanes decide from a module's text, before
    or without importing it.)"""
    try:
        return bool(pattern.search(Path(path).read_text(encoding="utf-8")))
    except OSError:
        return False


def imports_locust(path: PurePath) -> bool:
    """Does this test module import Locust in-process (and so gevent's monkey-patching)?"""
    return _module_says(_LOCUST_IMPORT, path)


def _xdist_worker() -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


_MARKS_ALONE = re.compile(r"^[^#\n]*\bmark\.alone\b", re.MULTILINE)


def marks_alone(path: PurePath) -> bool:
    """Does this test module mark tests `alone`?"""
    return _module_says(_MARKS_ALONE, path)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--off-workers", action="store_true",
                     help="collect only the modules that import Locust or mark tests `alone` (make test's "
                     "lanes beside the xdist workers: they run a few dozen tests and need not collect "
                     "two thousand)")


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if _xdist_worker() and imports_locust(collection_path):
        return True  # run beside the workers (-m locust_in_process)
    if config.getoption("off_workers"):
        return not (imports_locust(collection_path) or marks_alone(collection_path))
    return None


def pytest_configure(config: pytest.Config) -> None:
    required()  # an unknown name in INFERLOAD_REQUIRE stops the session here
    if not getattr(sys, "_inferload_lanes_audit", False):  # audit hooks cannot be removed: add one
        sys.addaudithook(_audit)
        sys._inferload_lanes_audit = True  # type: ignore[attr-defined]


def fixtures_of(item: pytest.Item) -> set[str]:
    """The fixtures a test uses, directly or through others; not its parametrize arguments (a
    parameter may share a fixture's name)."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None)
    if definitions is None:
        return set(getattr(item, "fixturenames", ()))
    return {
        name for name, defs in definitions.items()
        if defs and getattr(defs[-1].func, "__name__", "") != "get_direct_param_fixture_func"
    }


def unmarked_server_tests(items: Iterable[pytest.Item]) -> list[str]:
    """Tests that use a server fixture but lack the `servers` marker."""
    offenders = []
    for item in items:
        used = SERVER_FIXTURES.intersection(fixtures_of(item))
        if used and item.get_closest_marker("servers") is None:
            offenders.append(f"{item.nodeid} (uses {', '.join(sorted(used))})")
    return offenders


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if imports_locust(item.path):
            item.add_marker("locust_in_process")
    if _xdist_worker() and "locust" in sys.modules:
        modules = sorted({str(item.path) for item in items})
        raise pytest.UsageError(
            "Locust was imported on a pytest-xdist worker (its gevent patching deadlocks the worker): a "
            "module imports it in a way tests/lanes.py's scan misses; import it on a line "
            "`import locust` / `from loadtest.locustfile ...`, or run it serially. Modules collected:\n  "
            + "\n  ".join(modules)
        )
    offenders = unmarked_server_tests(items)
    if offenders:
        raise pytest.UsageError(
            "these tests start servers through a fixture but are not marked @pytest.mark.servers "
            "(tests/lanes.py):\n  " + "\n  ".join(offenders)
        )


# a module line that marks tests `servers` or `slow` (a module-level `pytestmark` or a decorator)
_SHARES_HOSTS = re.compile(r"^[^#\n]*\bmark\.(?:servers|slow)\b", re.MULTILINE)


def shares_hosts(path: PurePath) -> bool:
    """Does this test module hold server or slow tests? (From its text: xdist's controller, which
    schedules, sees node ids only.)"""
    return _module_says(_SHARES_HOSTS, path)


def area_scope(nodeid: str, rootdir: Path) -> str:
    """The unit of work a worker takes whole: the test area ("area-faults": every module under
    tests/faults/ that holds server or slow tests, so the area's session hosts start once), or the test
    itself for a module without servers."""
    module = nodeid.split("::", 1)[0]
    parts = PurePath(module).parts
    if len(parts) >= 2 and shares_hosts(rootdir / module):
        return f"area-{parts[-2]}"
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` groups by test area (`area_scope`), the groups with the most tests first and the
    quick tests one by one behind them. (xdist 3.8's own `xdist_group` marks rename node ids in a way
    pytest 9 ignores, so its loadgroup would run every test on its own.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    rootdir = Path(config.rootpath)

    class AreaScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return area_scope(nodeid, rootdir)

    return AreaScheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    global _current
    _current = item
    try:
        return (yield)
    finally:
        _current = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs"):
        need(*marker.args)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.duration > SLOW_S and "slow" not in report.keywords:
        _slow_unmarked.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _slow_unmarked:
        terminalreporter.section(f"tests over {SLOW_S:g} s without @pytest.mark.slow")
        for nodeid, seconds in sorted(_slow_unmarked, key=lambda entry: -entry[1]):
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
