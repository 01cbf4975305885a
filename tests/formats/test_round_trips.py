"""Each results format reads back exactly what its owner's writer wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from format_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_owner_reads_back_what_it_wrote(case: Case, tmp_path: Path) -> None:
    path, written = case.write(tmp_path)
    read = case.read(path)
    if case.name == "requests.jsonl":  # (header dict, records): the header as written, the same records
        assert read[0] == written[0] and read[1] == written[1]
    else:
        assert read == written
