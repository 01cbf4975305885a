"""Bad input to Triton, sent as the load generator sends it: each request ends as an error outcome with
Triton's own message (the engine records it as an error, never as a latency), and before any load the
same mistakes are refused with a message naming what to fix. A body over Triton's limit is refused
before anything is sent, naming the limit."""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferload.cli import main
from loadtest import LoadSettings, TargetMismatch, describe_served_model, encode_body, preflight
from loadtest._health import v2_tensor_problem
from loadtest._transports import Outcome, make_transport
from models.linear import make_inputs
from serving import Ports, ServerSettings, Stack
from serving import triton as triton_server
from serving.processes import spawn, stop, wait_healthy

FEATURES = 1024


def settings(stack_ports: Ports, protocol: str, **fields: object) -> LoadSettings:
    port = stack_ports.triton_grpc if protocol == "grpc" else stack_ports.triton_http
    values = {"server": "triton", "protocol": protocol, "port": port, "features": FEATURES, "rate": 10.0,
              "duration_s": 1.0, **fields}
    return LoadSettings(**values)  # type: ignore[arg-type]


def send(load: LoadSettings, body: bytes) -> Outcome:
    transport = make_transport(load)
    try:
        transport.prime()
        return transport.send(body)
    finally:
        transport.close()


X = make_inputs(FEATURES, 2, seed=3)
BAD_REQUESTS = {  # case: (protocol, model name, body, what Triton says)
    "wrong shape (REST-JSON)": ("rest-json", "linear", encode_body("triton", "rest-json", X[:, :512]),
                                "unexpected shape for input 'x'"),
    "wrong shape (gRPC)": ("grpc", "linear", encode_body("triton", "grpc", X[:, :512]),
                           "INVALID_ARGUMENT: [request id: <id_unknown>] unexpected shape for input 'x'"),
    "wrong datatype": ("rest-json", "linear",
                       encode_body("triton", "rest-json", X).replace(b'"FP32"', b'"FP64"'),
                       "data-type is 'FP64', but model 'linear' expects 'FP32'"),
    "truncated binary body": ("rest-binary", "linear", encode_body("triton", "rest-binary", X)[:-100],
                              "unexpected size for input 'x'"),
    "unknown model": ("rest-json", "no_such_model", encode_body("triton", "rest-json", X),
                      "Request for unknown model: 'no_such_model' is not found"),
    "unknown model (gRPC)": ("grpc", "no_such_model", encode_body("triton", "grpc", X, "no_such_model"),
                             "NOT_FOUND: Request for unknown model"),
}


@pytest.mark.servers
@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_bad_request_is_an_error_with_triton_s_message_and_triton_keeps_serving(
    small_stack: Stack, case: str
) -> None:
    protocol, model_name, body, message = BAD_REQUESTS[case]
    outcome = send(settings(small_stack.ports, protocol, model_name=model_name), body)
    assert outcome.status == "error" and outcome.code in (400, 404, 3, 5), outcome  # 3, 5: gRPC codes
    assert message in (outcome.error or ""), outcome.error
    good = send(settings(small_stack.ports, protocol), encode_body("triton", protocol, X))
    assert good.status == "ok" and small_stack.alive("triton")


@pytest.mark.servers
@pytest.mark.parametrize("protocol", ["rest-json", "grpc"])
def test_another_input_width_is_refused_before_load_naming_the_served_one(
    small_stack: Stack, protocol: str
) -> None:
    expected = r"serves model 'linear' with 1024 input features.*--features 1024"
    with pytest.raises(TargetMismatch, match=expected):
        preflight(settings(small_stack.ports, protocol, features=512))


@pytest.mark.servers
@pytest.mark.parametrize("protocol", ["rest-binary", "grpc"])
def test_an_unknown_model_is_refused_before_load(small_stack: Stack, protocol: str) -> None:
    with pytest.raises(TargetMismatch, match=r"serves no model named 'no_such_model'.*--model-name"):
        preflight(settings(small_stack.ports, protocol, model_name="no_such_model"))


@pytest.mark.servers
def test_a_model_of_another_datatype_or_input_name_is_refused_naming_what_inferload_sends(
    small_stack: Stack,
) -> None:
    """What Triton describes for our model passes; the same description with FP16 or another input name
    (as a model exported elsewhere would say) is refused, naming the export to serve instead."""
    url = f"http://127.0.0.1:{small_stack.ports.triton_http}"
    served = describe_served_model("triton", url, "linear")
    assert (served.input_name, served.datatype, served.features, served.classes) == ("x", "FP32", 1024, 64)
    assert v2_tensor_problem(served) is None
    fp16 = v2_tensor_problem(dataclasses.replace(served, datatype="FP16"))
    assert fp16 is not None and "takes FP16 input; inferload sends FP32" in fp16
    assert "inferload export" in fp16
    renamed = v2_tensor_problem(dataclasses.replace(served, input_name="input__0"))
    assert renamed is not None and "input named 'input__0'; inferload sends 'x'" in renamed


@pytest.fixture
def unready_triton(small_artifacts, tmp_path: Path) -> Iterator[Ports]:
    """A Triton whose model is known but not ready: started in explicit model control, then unloaded."""
    ports = Ports.free()
    kind = triton_server.resolve_kind("auto")
    spec = triton_server.launch_spec(small_artifacts, kind=kind, settings=ServerSettings(), ports=ports,
                                     workdir=tmp_path / "triton")
    explicit = ("--model-control-mode=explicit", "--load-model=linear")
    spec = dataclasses.replace(spec, argv=(*spec.argv, *explicit))
    handle, _ = spawn(spec)
    try:
        wait_healthy({"triton": (handle, spec, lambda: triton_server.health(ports))}, 240)
        unload = f"http://127.0.0.1:{ports.triton_http}/v2/repository/models/linear/unload"
        urllib.request.urlopen(urllib.request.Request(unload, data=b"", method="POST"), timeout=30).read()
        yield ports
    finally:
        stop(handle, name="triton", ports=ports.of("triton").values())


@pytest.mark.servers
def test_an_unready_model_is_refused_before_load_and_its_requests_are_errors(unready_triton: Ports) -> None:
    for protocol in ("rest-json", "grpc"):
        with pytest.raises(TargetMismatch, match="not ready"):
            preflight(settings(unready_triton, protocol))
        outcome = send(settings(unready_triton, protocol), encode_body("triton", protocol, X))
        assert outcome.status == "error" and "has no available versions" in (outcome.error or ""), outcome
    assert triton_server.health(unready_triton) is not None  # and the stack's health says it is not ready


@pytest.mark.parametrize(
    ("protocol", "batch"), [("rest-json", 1024), ("rest-binary", 2048), ("grpc", 2048)]
)
def test_a_body_over_triton_s_limit_is_refused_before_anything_is_sent(
    protocol: str, batch: int, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Full size: batch 1024 is 2.9 GB of JSON; 2048 raw instances are 2 GiB, over Triton's 2 GiB - 1."""
    args = ["load", "--server", "triton", "--protocol", protocol, "--rate", "1", "--duration", "1",
            "--batch", str(batch), "--features", "262144", "--port", str(Ports.free().triton_http),
            "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "over the server's limit of 2,147,483,647 bytes" in err and "send a smaller batch" in err
    assert not (tmp_path / "run").exists()
