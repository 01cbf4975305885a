"""Any host a user names is accepted in the forms people write it; malformed ones are refused with a
message that says what a host looks like. Also where each server's model description is looked for."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loadtest import LoadSettings, describe_validation_error, metadata_url_for, split_host

BASE = {"server": "tfserving", "protocol": "rest-json", "rate": 1.0, "duration_s": 1.0}


@pytest.mark.parametrize(
    ("written", "host", "port"),
    [
        ("127.0.0.1", "127.0.0.1", None),
        ("198.18.3.2", "198.18.3.2", None),
        ("localhost", "localhost", None),
        ("serving.example.internal", "serving.example.internal", None),
        ("tf_serving", "tf_serving", None),  # compose service names may hold underscores
        ("box.local.", "box.local.", None),  # a fully qualified name with its root dot
        ("::1", "::1", None),
        ("[::1]", "::1", None),
        ("fd00::5", "fd00::5", None),
        ("box:8500", "box", 8500),
        ("10.0.0.5:8501", "10.0.0.5", 8501),
        ("[fd00::5]:8500", "fd00::5", 8500),
        ("http://10.0.0.5:8501", "10.0.0.5", 8501),
        ("http://10.0.0.5:8501/", "10.0.0.5", 8501),
        ("http://Serving.Example:8080", "serving.example", 8080),
        ("grpc://[::1]:7070", "::1", 7070),
        ("http://box", "box", None),
    ],
)
def test_host_forms_split_into_host_and_port(written: str, host: str, port: int | None) -> None:
    assert split_host(written) == (host, port)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("", "host is empty"),
        ("   ", "host is empty"),
        ("bad host", "is not a host name or IP address"),
        ("a..b", "is not a host name or IP address"),
        ("-box", "is not a host name or IP address"),
        ("box-", "is not a host name or IP address"),
        ("x" * 64 + ".com", "is not a host name or IP address"),
        ("ftp://10.0.0.5", "use http://, https://, grpc:// or grpcs://"),
        ("http://10.0.0.5:8501/v1/models/linear", "has a path or query"),
        ("http://10.0.0.5:8501?x=1", "has a path or query"),
        ("http://user:pw@10.0.0.5:8501", "credentials in the URL are not supported"),
        ("box:99999", "is malformed"),
        ("box:port", "is malformed"),
        ("box:0", "port 0"),
        ("http://:8501", "names no host"),
    ],
)
def test_malformed_hosts_are_refused_saying_what_a_host_looks_like(written: str, message: str) -> None:
    with pytest.raises(ValueError, match="host") as caught:
        split_host(written)
    assert message in str(caught.value)


def test_a_url_host_fills_the_port_and_a_second_different_port_is_refused() -> None:
    settings = LoadSettings(**BASE, host="http://198.18.3.2:9501")
    assert (settings.host, settings.resolved_port, settings.target) == ("198.18.3.2", 9501, "198.18.3.2:9501")
    assert LoadSettings(**BASE, host="198.18.3.2:9501", port=9501).resolved_port == 9501
    with pytest.raises(ValidationError) as caught:
        LoadSettings(**BASE, host="198.18.3.2:9501", port=8501)
    assert "names port 9501 but port is 8501: give the port once" in describe_validation_error(caught.value)


def test_ipv6_targets_are_bracketed_where_a_port_follows() -> None:
    assert LoadSettings(**BASE, host="fd00::5", port=8501).target == "[fd00::5]:8501"


@pytest.mark.parametrize(
    ("server", "protocol", "host", "port", "url"),
    [
        # TF Serving REST describes its model on the same port
        ("tfserving", "rest-json", "box", None, "http://box:8501"),
        ("tfserving", "rest-binary", "box", 9501, "http://box:9501"),
        # its gRPC port and TorchServe: the standard description port, only at the standard ports
        ("tfserving", "grpc", "box", None, "http://box:8501"),
        ("tfserving", "grpc", "box", 8500, "http://box:8501"),
        ("tfserving", "grpc", "box", 9500, None),
        ("torchserve", "rest-json", "box", 8080, "http://box:8081"),
        ("torchserve", "grpc", "::1", None, "http://[::1]:8081"),
        ("torchserve", "rest-binary", "box", 9080, None),
    ],
)
def test_where_the_served_model_is_described(
    server: str, protocol: str, host: str, port: int | None, url: str | None
) -> None:
    assert metadata_url_for(server, protocol, host, port) == url


def test_a_given_metadata_url_wins_and_must_be_http() -> None:
    given = LoadSettings(**{**BASE, "server": "torchserve"}, host="box", port=9080,
                         metadata_url="http://box:9081/")
    assert given.resolved_metadata_url == "http://box:9081"
    with pytest.raises(ValidationError) as caught:
        LoadSettings(**BASE, metadata_url="box:9081")
    message = describe_validation_error(caught.value)
    assert "metadata_url 'box:9081' must be an http:// or https:// URL" in message
