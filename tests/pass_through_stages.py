"""The parts of a fake `inferload.stages.Stages` that runner tests leave alone, shared by their fakes.

Settings pass through unchecked and unchanged, there is no calibration, and the warm-up is stable at
once (steady 1 ms requests, 10 a second). A test's fake inherits these and writes only the stages it
records or scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferload.calibration import NoCalibration
from inferload.experiments import ServerConfig


class PassThroughStages:
    def check_server_settings(self, config: ServerConfig, tfserving_kind: str | None) -> None:
        pass

    def make_load_settings(self, **fields: Any) -> dict[str, Any]:
        return fields

    def calibration(self, *args: Any, **kwargs: Any) -> NoCalibration:
        return NoCalibration()

    def warmup_chunk(self, settings: Any, out_dir: Path) -> list[tuple[int, float]]:
        """Closed-loop warm-up: steady 1 ms requests, 10 a second (stable at once)."""
        return [(k * 100_000_000, 1.0) for k in range(20)]
