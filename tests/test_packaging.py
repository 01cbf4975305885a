"""The project's set-up contract: pinned dependencies, one test command, stubs generated not committed."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_dependency_is_pinned_exactly():
    deps = pyproject()["project"]["dependencies"] + pyproject()["project"]["optional-dependencies"]["dev"]
    loose = [d for d in deps if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.+]*", d.strip())]
    assert loose == [], f"unpinned dependencies: {loose}"


def test_torch_is_pinned_to_the_local_cpu_wheel():
    assert "torch==2.13.0" in pyproject()["project"]["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme.split("## ", 2)[1], "README's first section must show `make test`"
    assert re.search(r"^make test$", ci, re.MULTILINE), ".ci/run must call exactly `make test`"


def test_generated_stubs_are_ignored_by_git():
    generated = sorted((ROOT / "inferload_protos").glob("*_pb2*.py"))
    assert generated, "stubs missing: run `make setup`"
    tracked = subprocess.run(
        ["git", "ls-files", "inferload_protos"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [t for t in tracked if t.endswith(("_pb2.py", "_pb2_grpc.py"))]


def test_cli_lists_every_stage():
    out = subprocess.run(
        [sys.executable, "-m", "inferload", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("export", "serve", "load", "run", "report"):
        assert command in out
