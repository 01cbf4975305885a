"""The harness's own door: `inferload load --workers N` takes only workers that hold the run's secret,
and a worker takes its share (where to send load) only from a coordinator that holds it.

Real TCP on loopback between the coordinator's and the worker's handshake code; the "intruders" are
what a stranger on the network can send: a wrong proof, a line without a valid HMAC after the
handshake, a fake coordinator's welcome.
"""

from __future__ import annotations

import json
import socket
import stat
import threading
from pathlib import Path

import pytest

from loadtest._cluster import (
    SECRET_ENV,
    ClusterError,
    WorkerError,
    _accept,
    _join,
    _mac,
    _receive,
    cluster_secret,
)

SECRET = b"the-run-secret-0123456789abcdef"


def _server() -> tuple[socket.socket, str]:
    server = socket.create_server(("127.0.0.1", 0))
    return server, f"127.0.0.1:{server.getsockname()[1]}"


def test_a_peer_without_the_secret_is_refused_and_never_counted() -> None:
    server, address = _server()
    answers: list[dict] = []

    def intruder() -> None:
        with socket.create_connection(server.getsockname()) as sock:
            stream = sock.makefile("rw", encoding="utf-8", newline="\n")
            challenge = json.loads(stream.readline())["challenge"]
            hello = {"host": "intruder", "processes": 8, "nonce": "00" * 16,
                     "proof": _mac(b"a guess at the secret", "worker", challenge, "00" * 16)}
            stream.write(json.dumps({"hello": hello}) + "\n")
            stream.flush()
            answers.append(json.loads(stream.readline()))

    thread = threading.Thread(target=intruder)
    thread.start()
    with server, pytest.raises(ClusterError, match="only 0 of 1 load worker"):
        _accept(server, 1, 3.0, address, SECRET)
    thread.join(5)
    assert answers == [{"refused": "this peer does not know the run's secret"}]


def test_a_worker_with_the_secret_joins_and_both_sides_proved_it() -> None:
    server, address = _server()
    joined: list[object] = []
    def worker() -> None:
        joined.append(_join(socket.create_connection(server.getsockname()), SECRET, 2, address))

    thread = threading.Thread(target=worker)
    thread.start()
    with server:
        (peer,) = _accept(server, 1, 5.0, address, SECRET)
    thread.join(5)
    assert peer.host and peer.processes == 2
    channel = joined[0]
    channel.send({"ready": {}})  # type: ignore[attr-defined]
    assert peer.channel.receive() == {"ready": {}}


def test_records_from_an_unauthenticated_line_never_enter_the_run(tmp_path: Path) -> None:
    """After a valid handshake, a line without a valid HMAC (injected, or altered on the way) ends the
    connection: the forged records are not written, and the genuine ones before it are."""
    server, address = _server()
    joined: list[object] = []
    worker_sock = socket.create_connection(server.getsockname())
    thread = threading.Thread(target=lambda: joined.append(_join(worker_sock, SECRET, 1, address)))
    thread.start()
    with server:
        (peer,) = _accept(server, 1, 5.0, address, SECRET)
    thread.join(5)
    channel = joined[0]
    channel.send({"append": {"file": "requests.1.jsonl", "text": "genuine\n"}})  # type: ignore[attr-defined]
    forged = {"m": json.dumps({"append": {"file": "requests.1.jsonl", "text": "forged\n"}}), "mac": "0" * 64}
    channel.stream.write(json.dumps(forged) + "\n")  # type: ignore[attr-defined]
    channel.stream.flush()  # type: ignore[attr-defined]
    channel.send({"append": {"file": "requests.1.jsonl", "text": "after\n"}})  # type: ignore[attr-defined]
    worker_sock.shutdown(socket.SHUT_WR)
    _receive(peer, tmp_path)
    assert (tmp_path / "requests.1.jsonl").read_text() == "genuine\n"
    assert peer.done is None  # the run counts this worker as lost, not finished


def test_a_worker_does_not_take_a_share_from_a_coordinator_without_the_secret() -> None:
    server, address = _server()

    def impostor() -> None:
        sock, _ = server.accept()
        with sock:
            stream = sock.makefile("rw", encoding="utf-8", newline="\n")
            stream.write(json.dumps({"challenge": "11" * 16}) + "\n")
            stream.flush()
            stream.readline()
            stream.write(json.dumps({"welcome": "f" * 64}) + "\n")
            stream.flush()

    thread = threading.Thread(target=impostor)
    thread.start()
    with server, pytest.raises(WorkerError, match="does not know the run's secret: not joining it"):
        _join(socket.create_connection(server.getsockname()), SECRET, 1, address)
    thread.join(5)


def test_the_coordinator_makes_a_private_secret_file_when_given_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    secret, where = cluster_secret(tmp_path / "run.secret", create=True)
    path = tmp_path / "run.secret"
    assert where == f"the file {path}" and len(secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cluster_secret(path, create=False)[0] == secret  # the workers' copy


def test_a_worker_without_a_secret_is_told_where_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(WorkerError, match="give --secret-file PATH"):
        cluster_secret(None, create=False)
