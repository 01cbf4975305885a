"""--ssl_config_file: TF Serving's text-format SSLConfig (PEM contents, not file names), read at start-up.

What the real binary does (model_servers/server.cc, BuildServerCredentialsFromSSLConfigFile): no file,
an insecure gRPC port; a file, a TLS port with `server_key`/`server_cert`; `client_verify: true`
requires and verifies a client certificate against `custom_ca`. The file inferload writes for its
own servers (serving/tfserving.py) is what tfs-compat reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.certs import make_tls_material
from serving.settings import ServerSettings, ServerTls
from serving.tfs_compat.flags import parse_flags
from serving.tfs_compat.startup import StartError, plan_startup
from serving.tfserving import ssl_config

BASE = ["--port=8500", "--model_name=linear", "--model_base_path=/models/linear"]


def _plan(*args: str):
    return plan_startup(parse_flags([*BASE, *args]))


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory):
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("mutual", [False, True], ids=["server-only", "mutual"])
def test_the_file_inferload_writes_is_read_back_with_the_pem_contents(
    material, tmp_path: Path, mutual: bool
) -> None:
    tls = ServerTls(cert_file=str(material.server.cert), key_file=str(material.server.key),
                    ca_file=str(material.ca.cert), client_ca_file=str(material.ca.cert) if mutual else None)
    config = tmp_path / "ssl.config"
    config.write_text(ssl_config(ServerSettings(tls=tls)))

    ssl = _plan(f"--ssl_config_file={config}").ssl

    assert ssl is not None
    assert ssl.server_key == material.server.key.read_text()
    assert ssl.server_cert == material.server.cert.read_text()
    assert ssl.custom_ca == (material.ca.cert.read_text() if mutual else "")
    assert ssl.client_verify is mutual


def test_without_the_flag_grpc_stays_plaintext() -> None:
    assert _plan().ssl is None


def test_a_file_that_is_not_an_ssl_config_stops_the_start_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "ssl.config"
    config.write_text('server_key: "k"\nserver_certificate: "c"\n')  # a misspelt field
    with pytest.raises(StartError, match=rf"INVALID_ARGUMENT: Invalid protobuf file: '{config}'"):
        _plan(f"--ssl_config_file={config}")


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(StartError, match="NOT_FOUND: .*missing.config; No such file or directory"):
        _plan(f"--ssl_config_file={tmp_path / 'missing.config'}")
