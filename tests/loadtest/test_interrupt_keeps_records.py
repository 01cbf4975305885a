"""SIGTERM (or Ctrl-C) mid-run ends the run cleanly: every record so far is on disk and readable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from loadtest import read_run
from loadtest._schema import stream_path

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_leaves_readable_records_and_an_invalid_load_json(
    port_of, small_features, tmp_path, signum
) -> None:
    command = [
        sys.executable,
        "-m",
        "inferload",
        "load",
        "--server",
        "torchserve",
        "--protocol",
        "rest-json",
        "--rate",
        "100",
        "--duration",
        "30",
        "--features",
        str(small_features),
        "--port",
        str(port_of("torchserve", "rest-json")),
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        records_file = stream_path(tmp_path, 0)
        while time.monotonic() < deadline and (
            not records_file.exists() or records_file.stat().st_size < 5000
        ):
            time.sleep(0.1)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err
    records = read_run(tmp_path).records
    assert len(records) >= 20
    assert set(records["status"]) <= {"ok", "error"}
    load = json.loads((tmp_path / "load.json").read_text())
    assert load["interrupted"] is True and load["valid"] is False
    assert any("interrupted" in reason for reason in load["invalid_reasons"])
