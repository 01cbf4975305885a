"""`inferload load` refuses bad input with exit status 2 and a clear message, before sending anything."""

from __future__ import annotations

import socket

import pytest

from inferload.cli import main

BASE = [
    "load",
    "--server",
    "torchserve",
    "--protocol",
    "grpc",
    "--rate",
    "10",
    "--duration",
    "1",
    "--features",
    "8",
]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_option(flag: str, value: str) -> list[str]:
    args = list(BASE)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (with_option("--server", "nginx"), "server: 'nginx' is not one of the allowed values"),
        (with_option("--protocol", "soap"), "protocol: 'soap' is not one of the allowed values"),
        (with_option("--rate", "0"), "rate: Input should be greater than 0"),
        (with_option("--rate", "-5"), "rate: Input should be greater than 0"),
        (with_option("--duration", "0"), "--duration: Input should be greater than 0"),
        (with_option("--host", "http://192.168.1.20:8501/v1"), "has a path or query"),
        (with_option("--batch", "0"), "batch: Input should be greater than or equal to 1"),
    ],
)
def test_invalid_settings_exit_2_naming_the_problem(args, message, capsys, tmp_path) -> None:
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_an_unreachable_server_is_named_with_a_hint(protocol, capsys, tmp_path) -> None:
    port = unused_port()
    args = [*with_option("--protocol", protocol), "--port", str(port), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "inferload serve up" in err
    assert not list(tmp_path.glob("requests*"))


def test_missing_model_json_under_artifacts_says_to_export(capsys, tmp_path) -> None:
    args = [a for a in BASE if a not in ("--features", "8")] + [
        "--artifacts",
        str(tmp_path),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    assert "inferload export" in capsys.readouterr().err


def test_rate_and_concurrency_together_are_refused(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*BASE, "--concurrency", "2", "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
