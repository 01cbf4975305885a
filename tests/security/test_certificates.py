"""Certificates made for tests and local TLS servers (serving/certs.py), and the sentences a TLS failure
becomes (loadtest/_security.py), checked with real TLS handshakes on loopback (Python's ssl module on
both ends; the servers' own TLS is tested in the namespace host tests)."""

from __future__ import annotations

import socket
import ssl
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from loopback import loopback_server

from loadtest._security import Security, check_tls, describe_tls_failure
from serving.certs import CertificateFiles, TlsMaterial, issue, local_material, make_ca, make_tls_material


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), names=("127.0.0.1", "secured.test"))


@contextmanager
def tls_server(cert: CertificateFiles) -> Iterator[int]:
    """A TLS server on loopback that answers one line per connection, with `cert`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)

    def answer(raw: socket.socket) -> None:
        try:
            with context.wrap_socket(raw, server_side=True) as tls:
                tls.recv(100)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (ssl.SSLError, OSError):
            pass

    with loopback_server(answer) as port:
        yield port


def _failure(port: int, security: Security) -> str:
    with pytest.raises(ssl.SSLError) as caught:
        check_tls("127.0.0.1", port, security, grpc=False, timeout_s=5)
    return describe_tls_failure(caught.value, f"https://127.0.0.1:{port}")


def test_keys_are_private_and_the_chain_verifies(material: TlsMaterial) -> None:
    for files in (material.ca, material.server, material.client):
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    trusted = Security(tls=True, ca_cert=str(material.ca_cert))
    with tls_server(material.server) as port:
        check_tls("127.0.0.1", port, trusted, grpc=False, timeout_s=5)
        check_tls("127.0.0.1", port, trusted.model_copy(update={"server_name": "secured.test"}), grpc=False,
                  timeout_s=5)


def test_an_unknown_ca_a_wrong_name_and_an_expired_certificate_are_told_apart(
    material: TlsMaterial, tmp_path: Path
) -> None:
    other = make_ca(tmp_path / "other", name="another CA")
    with tls_server(material.server) as port:
        unknown = _failure(port, Security(tls=True, ca_cert=str(other.cert)))
        wrong = _failure(port, Security(tls=True, ca_cert=str(material.ca_cert),
                                        server_name="elsewhere.test"))
    expired = issue(material.ca, tmp_path, "expired", names=("127.0.0.1",), expired=True)
    with tls_server(expired) as port:
        old = _failure(port, Security(tls=True, ca_cert=str(material.ca_cert)))
    assert "unable to get local issuer certificate" in unknown and "unknown CA" in unknown
    assert "Hostname mismatch" in wrong and "--server-name" in wrong
    assert "certificate has expired" in old
    assert all("https://127.0.0.1:" in text for text in (unknown, wrong, old))


def test_tls_to_a_plaintext_server_is_named() -> None:
    def answer(connection: socket.socket) -> None:
        with connection:
            connection.recv(100)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with loopback_server(answer) as port:
        message = _failure(port, Security(tls=True))
    assert f"https://127.0.0.1:{port} does not speak TLS" in message


def test_local_material_is_made_once_and_reused(tmp_path: Path) -> None:
    first = local_material(tmp_path / "local")
    again = local_material(tmp_path / "local")
    assert first == again and first.server.cert.read_bytes() == again.server.cert.read_bytes()
    assert stat.S_IMODE((tmp_path / "local").stat().st_mode) == 0o700
