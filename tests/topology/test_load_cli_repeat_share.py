"""`inferload load --repeat-share F`: into the load settings, or refused naming the flag (before any load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cli import UsageError, build_parser
from inferload.commands.load import build_settings

BASE = ["load", "--server", "torchserve", "--protocol", "rest-binary", "--rate", "5", "--duration", "1",
        "--features", "8"]


def settings_for(extra: list[str], out: Path):  # noqa: ANN201 - loadtest.LoadSettings
    return build_settings(build_parser().parse_args([*BASE, *extra, "--out", str(out)]))


def test_the_share_reaches_the_load_settings(tmp_path: Path) -> None:
    assert settings_for(["--repeat-share", "0.5"], tmp_path).repeat_share == 0.5
    assert settings_for([], tmp_path).repeat_share is None


@pytest.mark.parametrize("share", ["1.5", "-0.1"])
def test_a_share_outside_zero_to_one_names_the_flag(tmp_path: Path, share: str) -> None:
    with pytest.raises(UsageError, match="--repeat-share:"):
        settings_for(["--repeat-share", share], tmp_path)


def test_zipf_and_catalog_reach_the_settings_and_exclude_a_repeat_share(tmp_path: Path) -> None:
    settings = settings_for(["--zipf", "1.1", "--catalog", "500"], tmp_path)
    assert (settings.zipf_s, settings.catalog_size, settings.repeat_share) == (1.1, 500, None)
    with pytest.raises(UsageError, match="either repeat_share or zipf_s"):
        settings_for(["--zipf", "1.1", "--repeat-share", "0.5"], tmp_path)
