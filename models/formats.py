"""The schema and version check shared by the files models/ and serving/ write (model.json, floor.json,
server_metrics.jsonl).

models/ and serving/ may not import loadtest's `check_format` (DESIGN.md section 8), so they share this
one, worded the same way: the file, the version it says, the one read here, and what to do about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NEWER_HINT = "it was written by a newer inferload: upgrade inferload to read it"


def check_schema(
    path: str | Path, document: Any, *, schema: str, version: int, redo: str, error: type[Exception]
) -> None:
    """Raise `error` unless `document` is a mapping of `schema` at `version`; `redo` says how to
    write the file again when it is older than this inferload reads."""
    if not isinstance(document, dict) or document.get("schema") != schema:
        found = document.get("schema") if isinstance(document, dict) else None
        raise error(f"{path}: schema is {found!r}, expected {schema!r}")
    said = document.get("schema_version")
    if said != version:
        hint = NEWER_HINT if isinstance(said, int) and said > version else redo
        raise error(f"{path}: {schema} format version {said!r}; this inferload reads version {version}: "
                    f"{hint}")
