"""`python -m serving.triton_install`: Triton's parts of the set-up (`make setup` runs it; idempotent).

Three pieces, each kept out of the way of inferload's own dependencies:
- the server: the nvidia-pytriton wheel, installed with --no-deps. Its Python client library pins
  numpy<2 and protobuf<7, which inferload uses newer and never needs: only its `tritonserver`
  binary, Python backend and response cache are used (serving/triton.py).
- the model's environment: `.venv/triton-env`, a virtual environment of this Python with NumPy 1
  only, because the Python backend's stub reads NumPy 1's dtype layout (serving/triton.py).
- perf_analyzer, the independent reference of benchmarks/perf_analyzer_reference.py: the binary out
  of the tritonclient 2.41.0 manylinux wheel, unpacked into `.venv/tools/perf_analyzer/bin/`, with
  `lib/` links to the two libraries it needs that the pytriton wheel carries (libb64.so.0d,
  libcudart.so.12). Unpacked rather than installed: the wheel's Python package would replace
  nothing inferload uses today, but a `tritonclient` on the path would shadow the client a user may
  have, and its bin/ scripts are all we want.
Pinned here, and listed in pyproject.toml's [tool.inferload.triton] (a test keeps the two equal).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from serving import triton

PERF_ANALYZER_WHEEL = "tritonclient==2.41.0"
PERF_ANALYZER_LIBS = {"libb64.so.0d": "libb64-*.so.0d", "libcudart.so.12": "libcudart-*.so.12*"}
PINS = {"server": triton.WHEEL_PIN, "model-env": triton.MODEL_ENV_NUMPY, "perf-analyzer": PERF_ANALYZER_WHEEL}


def tools_dir() -> Path:
    return Path(sys.prefix) / "tools" / "perf_analyzer"


def perf_analyzer_binary() -> Path:
    return tools_dir() / "bin" / "perf_analyzer"


def perf_analyzer_env() -> dict[str, str]:
    """The environment perf_analyzer runs in: its libraries' directory first on the library path."""
    inherited = os.environ.get("LD_LIBRARY_PATH")
    lib = str(tools_dir() / "lib")
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([lib, *([inherited] if inherited else [])])}


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], check=True)


def install_server() -> str:
    name, version = triton.WHEEL_PIN.split("==")
    try:
        if metadata.version(name) == version:
            return f"{triton.WHEEL_PIN}: already installed"
    except metadata.PackageNotFoundError:
        pass
    _pip("install", "--no-deps", triton.WHEEL_PIN)
    return f"{triton.WHEEL_PIN}: installed (--no-deps)"


def install_model_env() -> str:
    env = triton.model_env()
    python = env / "bin" / "python"
    version = triton.MODEL_ENV_NUMPY.split("==")[1]
    if python.exists() and list(env.glob(f"lib/python*/site-packages/numpy-{version}.dist-info")):
        return f"{env}: already has {triton.MODEL_ENV_NUMPY}"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    _pip("--python", str(python), "install", triton.MODEL_ENV_NUMPY)
    return f"{env}: made with {triton.MODEL_ENV_NUMPY}"


def install_perf_analyzer() -> str:
    binary = perf_analyzer_binary()
    libs = triton.wheel_libs()
    if libs is None:
        raise SystemExit("perf_analyzer needs the pytriton wheel's libraries: install the server first")
    lib_dir = tools_dir() / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    for name, pattern in PERF_ANALYZER_LIBS.items():
        found = sorted(libs.glob(pattern))
        if not found:
            raise SystemExit(f"{libs} has no {pattern} (wanted as {name} by perf_analyzer)")
        link = lib_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(found[0].resolve())
    if binary.is_file():
        return f"{binary}: already unpacked"
    with tempfile.TemporaryDirectory(prefix="inferload-tritonclient-") as tmp:
        _pip("download", "--no-deps", "--only-binary=:all:", PERF_ANALYZER_WHEEL, "-d", tmp)
        (wheel,) = Path(tmp).glob("tritonclient-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            member = next(n for n in archive.namelist() if n.endswith("/data/bin/perf_analyzer"))
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_bytes(archive.read(member))
    binary.chmod(0o755)
    return f"{binary}: unpacked from {PERF_ANALYZER_WHEEL}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.triton_install", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--no-perf-analyzer", action="store_true", help="skip the benchmark reference tool")
    args = parser.parse_args(argv)
    steps = [install_server, install_model_env]
    if not args.no_perf_analyzer:
        steps.append(install_perf_analyzer)
    for step in steps:
        print(f"triton set-up: {step()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
