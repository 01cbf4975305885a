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
