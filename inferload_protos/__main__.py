"""Generate the gRPC stubs: `python -m inferload_protos` (idempotent; `make setup` runs it)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE_PATH = Path("inferload_protos")
JAR_PROTOS = ("inference.proto", "management.proto", "open_inference_grpc.proto")
LOCAL_PROTOS = ("tfserving_predict.proto",)


def torchserve_jar() -> Path:
    import ts

    jar = Path(ts.__file__).resolve().parent / "frontend" / "model-server.jar"
    if not jar.is_file():
        raise SystemExit(f"torchserve frontend jar not found at {jar}: is torchserve installed?")
    return jar


def generate(out_root: Path = HERE.parent) -> list[Path]:
    """Compile the protos into `out_root/inferload_protos/`; returns the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    grpc_include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        jar_root = tmp_root / "jar"
        src_root = tmp_root / "src"
        (src_root / PACKAGE_PATH).mkdir(parents=True)
        with zipfile.ZipFile(torchserve_jar()) as jar:
            for member in jar.namelist():
                if member.startswith("google/") and member.endswith(".proto"):
                    jar.extract(member, jar_root)
            for name in JAR_PROTOS:
                (src_root / PACKAGE_PATH / name).write_bytes(jar.read(f"proto/{name}"))
        for name in LOCAL_PROTOS:
            shutil.copy(HERE / name, src_root / PACKAGE_PATH / name)
        sources = [str(PACKAGE_PATH / name) for name in (*JAR_PROTOS, *LOCAL_PROTOS)]
        args = [
            "grpc_tools.protoc",
            f"-I{src_root}",
            f"-I{grpc_include}",
            f"-I{jar_root}",
            f"--python_out={out_root}",
            f"--grpc_python_out={out_root}",
            *sources,
        ]
        import os

        cwd = os.getcwd()
        os.chdir(src_root)
        try:
            status = protoc.main(args)
        finally:
            os.chdir(cwd)
        if status != 0:
            raise SystemExit(f"protoc failed with status {status}")
    out_dir = out_root / PACKAGE_PATH
    return sorted(out_dir.glob("*_pb2*.py"))


if __name__ == "__main__":
    files = generate()
    print(f"generated {len(files)} stub modules in {HERE}", file=sys.stderr)
