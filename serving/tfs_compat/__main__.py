"""`python -m serving.tfs_compat --port=... --rest_api_port=... --model_name=... --model_base_path=...`

Flag handling as in tensorflow_model_server's main.cc: a value it cannot interpret prints the usage
and exits 255, `--help` too; `--version` prints the versions and exits 0; an unknown argument prints
`unknown argument: X` and the usage, and the server starts anyway.
"""

import sys

from serving.tfs_compat.flags import FlagError, parse_command_line, usage


def main(argv: list[str]) -> int:
    try:
        command_line = parse_command_line(argv)
    except FlagError as exc:
        print(exc, file=sys.stderr)
        print(usage(), end="")
        return 255
    if command_line.help:
        print(usage(), end="")
        return 255
    if command_line.flags.values.get("version"):
        print(f"TensorFlow ModelServer: tfs-compat (inferload)\nTensorFlow Library: {_tensorflow_version()}")
        return 0
    if command_line.unknown:
        print(f"unknown argument: {command_line.unknown[0]}\n{usage()}", end="", flush=True)
    from serving.tfs_compat.startup import StartError, find_latest_version, plan_startup

    try:  # BuildAndStart's checks come before anything loads: a refusal needs no TensorFlow import
        find_latest_version(plan_startup(command_line.flags).base_path)
    except (StartError, FileNotFoundError) as exc:
        print(f"Failed to start server. Error: {exc}", flush=True)
        print(f"tfs-compat failed to start: {exc}", file=sys.stderr)
        return 255
    _refuse_keras()
    from serving.tfs_compat.server import serve  # TensorFlow loads only when the server really starts

    return serve(command_line.flags)


def _refuse_keras() -> None:
    """`import tensorflow` also imports Keras (and, through it, matplotlib) to alias `tf.keras`: 2 of the
    6 s of CPU a start took here. Serving SavedModels never calls Keras (tensorflow_model_server has
    none; `tf.saved_model.load` restores any SavedModel, a Keras-exported one too, without it), so the
    server refuses the import, and TensorFlow leaves the alias out when Keras cannot be imported."""
    sys.modules.setdefault("keras", None)  # type: ignore[arg-type]  # None: `import keras` raises


def _tensorflow_version() -> str:
    """The installed TensorFlow's version from its package metadata: no seconds-long import to print it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tensorflow")
    except PackageNotFoundError:
        import tensorflow as tf

        return str(tf.__version__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
