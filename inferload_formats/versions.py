"""What produced a results file: the installed versions every format echoes (records' headers, the
manifest, model.json), read one way."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata


def installed_versions(packages: Iterable[str], *, python: bool = True) -> dict[str, str]:
    """The installed version of each of `packages` (from its metadata, without importing it; one not
    installed is left out), after Python's own unless `python` is False."""
    found = {"python": platform.python_version()} if python else {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
