"""The calibration probe process (models/probe.py) as the runner drives it: calibrations on demand,
the low-duty probe between `probe on` and `probe off`, every line in calibration.jsonl."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from models.calibration import read_calibration


def test_the_probe_answers_each_command_and_writes_what_it_measured(tmp_path: Path) -> None:
    out = tmp_path / "calibration.jsonl"
    probe = subprocess.Popen(
        [sys.executable, "-m", "models.probe", "--classes", "8", "--features", "64", "--batch", "1",
         "--batch", "4", "--out", str(out), "--probe-interval", "0.05", "--budget", "0.2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert probe.stdin is not None and probe.stdout is not None

    def ask(command: dict[str, object]) -> dict[str, object]:
        assert probe.stdin is not None and probe.stdout is not None
        probe.stdin.write(json.dumps(command) + "\n")
        probe.stdin.flush()
        return json.loads(probe.stdout.readline())

    try:
        assert json.loads(probe.stdout.readline()) == {"ok": "ready"}
        first = ask({"calibrate": "before round 0"})["ok"]
        assert isinstance(first, dict) and first["index"] == 0
        assert [p["batch"] for p in first["predict"]] == [1, 4]
        assert ask({"probe": True}) == {"ok": True}
        time.sleep(0.5)
        assert ask({"probe": False}) == {"ok": False}
        assert ask({"calibrate": "after round 0"})["ok"]["index"] == 1  # type: ignore[index]
        assert "error" in ask({"sing": True})
        probe.stdin.write(json.dumps({"quit": True}) + "\n")
        probe.stdin.close()
        assert probe.wait(timeout=30) == 0
    finally:
        probe.kill()
    log = read_calibration(out)
    assert [p.label for p in log.points] == ["before round 0", "after round 0"]
    assert all(p.predict[0].n >= 3 and p.predict[0].median_ms > 0 and p.bandwidth_gb_s for p in log.points)
    assert len(log.probes) >= 2 and all(s.batch == 1 and s.calls == 3 for s in log.probes)
    assert log.header.threads == 1 and log.header.batches == (1, 4) and log.header.cpus is None
