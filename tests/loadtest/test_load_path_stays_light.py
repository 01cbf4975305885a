"""Load processes never import TensorFlow or torch (they must start fast and stay light)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["loadtest", "loadtest._worker", "loadtest.locustfile", "inferload.commands.load"]
)
def test_the_load_path_imports_neither_tensorflow_nor_torch(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "heavy = sorted(m for m in ('tensorflow', 'torch', 'serving', 'analysis', 'models') "
        "if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} pulled in: {result.stdout.strip()}"
