"""Importing models/ must not pull in TensorFlow or torch: servers and the CLI import it on fast paths."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_models_package_loads_neither_tensorflow_nor_torch() -> None:
    code = (
        "import sys, models, models.artifacts, models.export, models.floor, models.linear\n"
        "heavy = sorted(name for name in ('tensorflow', 'torch') if name in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
