"""A file of a newer (or unknown) format version is refused with a clear error that names the file,
the version the file says and the version this inferload reads: never misread."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from format_cases import CASES, Case

VERSION = re.compile(r'"schema_version":\s*\d+')


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(("version", "newer"), [(99, True), (0, False)])
def test_another_version_names_the_file_and_both_versions(case: Case, tmp_path: Path, version: int,
                                                          newer: bool) -> None:
    """A newer file says to upgrade inferload; an older or unknown one never does."""
    path, _ = case.write(tmp_path)
    text = path.read_text()
    assert len(VERSION.findall(text)) == 1, "one format header per file here"
    path.write_text(VERSION.sub(f'"schema_version": {version}', text))
    with pytest.raises(ValueError) as refused:
        case.read(path)
    message = str(refused.value)
    assert str(path) in message
    assert f"format version {version};" in message
    assert f"this inferload reads {case.reads}" in message
    assert ("written by a newer inferload: upgrade inferload" in message) == newer
