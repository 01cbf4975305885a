"""Versions of what produced a run, echoed into results headers (so results say what measured them)."""

from __future__ import annotations

import platform
from functools import cache
from importlib import metadata

_PACKAGES = (
    "inferload", "gevent", "geventhttpclient", "uvloop", "httptools", "hpack", "grpcio", "protobuf", "orjson",
    "numpy", "locust",
)


@cache
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
