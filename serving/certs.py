"""Throw-away certificates for servers started here with TLS on: a CA, server and client certificates.

Why generated, never committed: a key in the repository is a key everyone has. Each run (or test)
makes its own CA under its state directory with the `cryptography` package; the servers get a
certificate for the names and addresses they are reached at, clients trust the CA file, and mutual
TLS gets a client certificate signed by the same CA. Keys are RSA 2048 in PKCS#8 PEM (what TorchServe's
Netty, nginx, grpcio and Python's ssl module all read), written with mode 0600.

Tests also use the knobs a real deployment gets wrong: another CA, another name, an expired certificate.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CertificateFiles", "TlsMaterial", "make_ca", "make_tls_material", "issue"]

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CertificateFiles:
    """One certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsMaterial:
    """A CA and what it signed: the server's certificate and a client certificate (mutual TLS)."""

    ca: CertificateFiles
    server: CertificateFiles
    client: CertificateFiles

    @property
    def ca_cert(self) -> Path:
        return self.ca.cert


def _key() -> object:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(path: Path, data: bytes, *, secret: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if secret:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


def _save(directory: Path, stem: str, cert: object, key: object) -> CertificateFiles:
    from cryptography.hazmat.primitives import serialization

    cert_pem = cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
    key_pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return CertificateFiles(_write(directory / f"{stem}.crt", cert_pem, secret=False),
                            _write(directory / f"{stem}.key", key_pem, secret=True))


def make_ca(directory: Path, name: str = "inferload test CA") -> CertificateFiles:
    """A self-signed CA certificate valid for 30 days (from yesterday: clocks differ)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)  # type: ignore[attr-defined]
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return _save(directory, "ca", cert, key)


def issue(
    ca: CertificateFiles,
    directory: Path,
    stem: str,
    *,
    names: Sequence[str] = (),
    client: bool = False,
    expired: bool = False,
) -> CertificateFiles:
    """A certificate signed by `ca`: for a server (its DNS names and IP addresses in `names`) or a
    client; `expired` makes one whose validity ended yesterday."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - 10 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
    common_name = names[0] if names else stem
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
    )
    if alternative:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return _save(directory, stem, cert, key)


def make_tls_material(directory: Path, names: Sequence[str] = ("127.0.0.1", "localhost")) -> TlsMaterial:
    """A fresh CA under `directory` with a server certificate for `names` and a client certificate."""
    directory = Path(directory)
    ca = make_ca(directory)
    server = issue(ca, directory, "server", names=names)
    client = issue(ca, directory, "client", names=("inferload-client",), client=True)
    return TlsMaterial(ca=ca, server=server, client=client)


def local_material(root: Path | None = None) -> TlsMaterial:
    """The CA and certificates for servers inferload starts on this machine with TLS on (a matrix's
    `tls: true`): made once per user under the temp dir (mode 0700, never in a results directory, since
    it holds keys), reused while valid for at least a day more, for 127.0.0.1, ::1 and localhost."""
    import tempfile

    default = Path(tempfile.gettempdir()) / f"inferload-tls-{os.getuid()}"
    directory = Path(root) if root is not None else default
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = TlsMaterial(ca=CertificateFiles(directory / "ca.crt", directory / "ca.key"),
                        server=CertificateFiles(directory / "server.crt", directory / "server.key"),
                        client=CertificateFiles(directory / "client.crt", directory / "client.key"))
    with open(directory / ".lock", "a+") as lock:  # two runs starting at once: one makes, the other waits
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(f.cert.is_file() and f.key.is_file() for f in (files.ca, files.server, files.client)) \
                and _valid_for(files.server.cert, _DAY) and _valid_for(files.ca.cert, _DAY):
            return files
        return make_tls_material(directory, names=("127.0.0.1", "::1", "localhost"))


def _valid_for(cert: Path, margin: datetime.timedelta) -> bool:
    from cryptography import x509

    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return False
    return loaded.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + margin


def ca_fingerprint(cert: Path) -> str:
    """sha256:<first 16 hex digits> of the certificate's DER form: which CA, for records."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    loaded = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    return "sha256:" + loaded.fingerprint(hashes.SHA256()).hex()[:16]
