"""Versions of what produced a run, echoed into results headers (so results say what measured them)."""

from __future__ import annotations

from functools import cache

from inferload_formats.versions import installed_versions

_PACKAGES = (
    "inferload", "gevent", "geventhttpclient", "uvloop", "httptools", "hpack", "grpcio", "protobuf", "orjson",
    "numpy", "locust",
)


@cache
def versions() -> dict[str, str]:
    return installed_versions(_PACKAGES)
