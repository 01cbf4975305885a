"""loadtest's one security settings object: where secrets are (never what they are), how results
describe them, how refusals are recognised. No network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from loadtest import LoadSettings
from loadtest._security import (
    Credentials,
    RefusalWatch,
    Security,
    fingerprint,
    is_refused,
    parse_secret_reference,
    security_fields,
)

BASE = {"server": "torchserve", "protocol": "rest-json", "rate": 10, "duration_s": 1}


@pytest.mark.parametrize("text", ["s3cr3t-token", "env:", "file:", "ENV:TOKEN", "=env:X"])
def test_a_secret_is_never_taken_as_a_flag_value(text: str) -> None:
    with pytest.raises(ValueError, match="not the secret itself"):
        parse_secret_reference(text, what="--token")


def test_a_header_given_as_a_value_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="--header X-Api-Key: give where the secret is"):
        security_fields(host="https://box:8443", headers=["X-Api-Key=abc"])


@pytest.mark.parametrize(("fields", "message"), [
    ({"ca_cert": "/ca.pem"}, "are TLS settings: the target is plaintext"),
    ({"tls": True, "client_cert": "/c.pem"}, "needs both client_cert and client_key"),
    ({"token": {"env": "T"}, "torchserve_key_file": "/k.json"}, "not both"),
    ({"token": {"env": "T", "file": "/t"}}, "exactly one place"),
    ({"token": {"env": "NOT A NAME"}}, "is not an environment variable name"),
    ({"headers": [{"name": "Content-Type", "value": {"env": "X"}}]}, "is set by inferload itself"),
    ({"token": {"env": "T"}, "headers": [{"name": "authorization", "value": {"env": "X"}}]}, "twice"),
])
def test_inconsistent_security_is_refused_naming_the_problem(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Security.model_validate(fields)


def test_a_tls_scheme_turns_tls_on_and_the_echoed_settings_hold_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERLOAD_TEST_TOKEN", "tok-9f8e7d6c5b4a")
    settings = LoadSettings(**BASE, host="https://box:8443",
                            security={"token": {"env": "INFERLOAD_TEST_TOKEN"},
                                      "headers": [{"name": "X-Tenant",
                                                   "value": {"env": "UNSET_VARIABLE_X"}}]})
    assert settings.security.tls and settings.url == "https://box:8443"
    echoed = settings.resolved()["security"]
    assert json.dumps(echoed).count("tok-9f8e7d6c5b4a") == 0
    token, tenant = echoed["credentials"]
    assert token == {"header": "Authorization", "from": "env INFERLOAD_TEST_TOKEN", "present": True,
                     "fingerprint": fingerprint("tok-9f8e7d6c5b4a")}
    assert tenant["present"] is False and tenant["fingerprint"] is None


def test_plaintext_runs_without_credentials_echo_no_security_section() -> None:
    assert "security" not in LoadSettings(**BASE).resolved()


def test_torchserve_key_file_gives_each_api_its_own_key(tmp_path: Path) -> None:
    key_file = tmp_path / "key_file.json"
    key_file.write_text(json.dumps({"inference": {"key": "inf-123456"}, "management": {"key": "mgt-654321"},
                                    "API": {"key": "api-000000"}}))
    credentials = Credentials.load(Security(torchserve_key_file=str(key_file)))
    assert credentials.headers("inference") == {"Authorization": "Bearer inf-123456"}
    assert credentials.headers("management") == {"Authorization": "Bearer mgt-654321"}
    assert credentials.grpc_metadata() == (("authorization", "Bearer inf-123456"),)
    assert "inf-123456" not in credentials.describe() and fingerprint("inf-123456") in credentials.describe()


def test_a_server_echoing_a_secret_gets_it_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLOAD_TEST_TOKEN", "tok-9f8e7d6c5b4a")
    credentials = Credentials.load(Security(token={"env": "INFERLOAD_TEST_TOKEN"}))
    echoed = "bad token 'tok-9f8e7d6c5b4a' (header was Bearer tok-9f8e7d6c5b4a)"
    assert credentials.redact(echoed) == "bad token '[redacted]' (header was [redacted])"


@pytest.mark.parametrize(("protocol", "status", "code", "error", "refused"), [
    ("rest-json", "error", 401, "Unauthorized", True),
    ("rest-json", "error", 403, "Forbidden", True),
    ("rest-json", "error", 400, "Token Authorization failed. Token either incorrect", True),  # TorchServe
    ("rest-json", "error", 400, "bad instances", False),
    ("grpc", "error", 7, "PERMISSION_DENIED: Token Authorization failed", True),
    ("grpc", "error", 16, "UNAUTHENTICATED", True),
    ("grpc", "error", 14, "UNAVAILABLE", False),
    ("grpc", "timeout", 4, "DEADLINE_EXCEEDED", False),
])
def test_refusals_are_recognised_by_protocol(protocol: str, status: str, code: int, error: str,
                                             refused: bool) -> None:
    assert is_refused(protocol, status, code, error) is refused


def test_refusals_in_a_row_trip_once_and_a_success_resets_the_count() -> None:
    watch = RefusalWatch("https://box:8443", limit=3)
    assert [watch.add("rest-json", "error", 401, "no") for _ in range(2)] == [None, None]
    assert watch.add("rest-json", "ok", 200, None) is None
    results = [watch.add("rest-json", "error", 401, "no") for _ in range(4)]
    assert results[:2] == [None, None] and results[3] is None
    assert results[2] is not None and "refused our credentials mid-run" in results[2]
