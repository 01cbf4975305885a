"""Analysis reads results files only: importing it loads neither the runner (`inferload`) nor any code
that starts, samples or scrapes servers (DESIGN.md section 8; import-linter checks the imports
statically, this checks what really gets loaded)."""

from __future__ import annotations

import subprocess
import sys

SERVER_CODE = ("serving.stack", "serving.processes", "serving.monitor", "serving.prometheus",
               "serving.compose", "serving.replicas", "serving.balancer", "serving.torchserve",
               "serving.tfserving")


def test_importing_analysis_loads_no_runner_and_no_server_code() -> None:
    code = (
        "import sys, analysis, analysis.report, analysis.topology\n"
        "ours = ('inferload', 'serving')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ours)\n"
        "print(' '.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    assert not [m for m in loaded if m == "inferload" or m.startswith("inferload.")], loaded
    assert not set(loaded) & set(SERVER_CODE), loaded
    assert "serving.metrics_file" in loaded  # the server metrics format, read through its owner
