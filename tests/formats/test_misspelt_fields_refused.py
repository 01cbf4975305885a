"""A field under another name is refused, naming it: readers never fall back to other spellings or
silently drop what they do not know."""

from __future__ import annotations

from pathlib import Path

import pytest
from format_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_misspelt_field_is_refused_by_name(case: Case, tmp_path: Path) -> None:
    path, _ = case.write(tmp_path)
    text = path.read_text()
    assert f'"{case.field}"' in text
    misspelt = case.field + "s"
    path.write_text(text.replace(f'"{case.field}"', f'"{misspelt}"', 1))
    with pytest.raises(ValueError) as refused:
        case.read(path)
    assert str(path) in str(refused.value)
    assert misspelt in str(refused.value)


def test_a_misspelt_field_deep_inside_a_document_is_refused_too(tmp_path: Path) -> None:
    """summary.json's runs are analysis' own records (RunSummary, its stats, their percentiles): a
    field misspelt down there is refused by name as well, never dropped."""
    (case,) = [c for c in CASES if c.name == "summary.json"]
    path, _ = case.write(tmp_path)
    text = path.read_text()
    assert text.count('"goodput_rps"') == 1
    path.write_text(text.replace('"goodput_rps"', '"goodput_rpss"'))
    with pytest.raises(ValueError) as refused:
        case.read(path)
    assert str(path) in str(refused.value) and "runs.0.stats.goodput_rpss" in str(refused.value)
