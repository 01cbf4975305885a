"""`.ci/check_smoke_report.py`, CI's gate on the smoke report, loaded as a module (it is a script, not a
package), so the tests apply exactly its rules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "check_smoke_report.py"


def load_check_smoke_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_smoke_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
