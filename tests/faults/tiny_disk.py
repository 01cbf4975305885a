"""A small results disk for a test: a tmpfs of a few hundred kB mounted on a directory, unmounted
afterwards, also when the test fails. Needs root and `mount` (capability "tmpfs", tests/capabilities.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")


@contextmanager
def tiny_disk(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` kB mounted on `where` for the block."""
    where.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "inferload-test-disk", str(where))
    try:
        yield where
    finally:
        done = subprocess.run(["umount", str(where)], capture_output=True, timeout=30)
        if done.returncode != 0:  # something still has a file open there: detach it now, free it later
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def resize(where: Path, size_kb: int) -> None:
    """Give the mounted tmpfs another size (e.g. room freed, to resume)."""
    _run("mount", "-o", f"remount,size={size_kb}k", str(where))


def used_kb(where: Path) -> float:
    stats = os.statvfs(where)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize / 1024
