"""The matrix's `target:` section: local by default, compose and external validated on load with errors
that name the field and its line; the shipped external example is valid and maps to load settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.cells import expand_cells
from inferload.experiments import (
    ComposeTarget,
    ExperimentError,
    ExternalTarget,
    LocalTarget,
    load_experiment,
    parse_experiment,
)
from inferload.stages import load_settings_for
from inferload.targets import ExternalDriver, driver_for
from loadtest import LoadSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "experiments" / "external-example.yaml"
MATRIX = """\
name: targets
model: {classes: 4, features: 8, seed: 0}
servers: [tfserving, torchserve]
protocols: [rest-json, grpc]
load: {mode: open, rates: [10]}
batch_sizes: [1]
warmup_s: 0
duration_s: 1
"""
EXTERNAL = MATRIX + """\
target:
  kind: external
  servers:
    tfserving:
      rest: http://198.18.7.2:9501
      grpc: 198.18.7.2:9500
    torchserve:
      rest: http://[fd00::7]:9080
      grpc: "[fd00::7]:7070"
      management: http://[fd00::7]:9081
"""


def test_without_a_target_section_the_servers_are_local() -> None:
    experiment = parse_experiment(MATRIX)
    assert experiment.target == LocalTarget()
    assert driver_for(experiment).kind == "local"


def test_a_compose_target_takes_its_file_and_limits() -> None:
    experiment = parse_experiment(MATRIX + "target: {kind: compose, cpus: 4, memory: 8g}\n")
    assert experiment.target == ComposeTarget(kind="compose", cpus=4, memory="8g")
    assert driver_for(experiment).kind == "compose"


def test_an_external_target_maps_each_cell_to_the_users_address() -> None:
    experiment = parse_experiment(EXTERNAL)
    assert isinstance(experiment.target, ExternalTarget)
    driver = driver_for(experiment)
    assert isinstance(driver, ExternalDriver) and not driver.needs_artifacts
    found = {}
    for cell in expand_cells(experiment).cells:
        endpoint = driver.endpoint(cell.server, cell.protocol, ports=None)
        fields = load_settings_for(cell, experiment, None, server_kind=None, endpoint=endpoint)
        settings = LoadSettings(**fields)
        found[(cell.server, cell.protocol)] = (settings.target, settings.resolved_metadata_url)
    assert found == {
        ("tfserving", "rest-json"): ("198.18.7.2:9501", "http://198.18.7.2:9501"),
        ("tfserving", "grpc"): ("198.18.7.2:9500", "http://198.18.7.2:9501"),
        ("torchserve", "rest-json"): ("[fd00::7]:9080", "http://[fd00::7]:9081"),
        ("torchserve", "grpc"): ("[fd00::7]:7070", "http://[fd00::7]:9081"),
    }


def _edit(old: str, new: str) -> str:
    assert old in EXTERNAL
    return EXTERNAL.replace(old, new)


# (what is wrong, matrix text, expected "line: field" prefix, words the message must contain)
BAD = [
    ("unknown kind", _edit("kind: external", "kind: remote"), "9: target:",
     "'local', 'compose', 'external'"),
    ("no port on grpc", _edit("grpc: 198.18.7.2:9500", "grpc: 198.18.7.2"),
     "14: target.servers.tfserving.grpc:", "needs a port"),
    ("not a web URL", _edit("rest: http://198.18.7.2:9501", "rest: ftp://198.18.7.2:9501"),
     "13: target.servers.tfserving.rest:", "must be an http:// or https:// URL"),
    ("a path in rest", _edit("rest: http://198.18.7.2:9501", "rest: http://198.18.7.2:9501/v1/models"),
     "13: target.servers.tfserving.rest:", "has a path or query"),
    ("malformed host", _edit("grpc: 198.18.7.2:9500", "grpc: bad host:9500"),
     "14: target.servers.tfserving.grpc:", "is not a host name or IP address"),
    ("torchserve without management", _edit("      management: http://[fd00::7]:9081\n", ""),
     "15: target.servers.torchserve:", "management: http://HOST:8081"),
    ("a server the matrix measures has no address",
     _edit("    tfserving:\n      rest: http://198.18.7.2:9501\n      grpc: 198.18.7.2:9500\n", ""),
     "11: target.servers:", "add `tfserving: {rest: ..., grpc: ...}`"),
    ("a typo'd field", _edit("management:", "managment:"), "18: target.servers.torchserve.managment:",
     "unknown field"),
    ("tfserving_kind with an external target", EXTERNAL + "tfserving_kind: tfs-compat\n",
     "19: tfserving_kind:", "target.servers.tfserving.kind"),
    ("compose cpus", MATRIX + "target: {kind: compose, cpus: 0}\n", "9: target.cpus:",
     "greater than or equal"),
]


@pytest.mark.parametrize(("case", "text", "where", "words"), BAD, ids=[case for case, *_ in BAD])
def test_bad_target_sections_name_the_field_and_its_line(
    case: str, text: str, where: str, words: str
) -> None:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(text, source="m.yaml")
    message = str(caught.value)
    assert f"m.yaml:{where}" in message
    assert words in message


def test_the_shipped_external_example_is_valid_and_names_every_endpoint() -> None:
    experiment = load_experiment(EXAMPLE)
    target = experiment.target
    assert isinstance(target, ExternalTarget)
    assert set(target.servers) == set(experiment.servers) == {"tfserving", "torchserve", "triton"}
    assert target.servers["torchserve"].management is not None
    driver = driver_for(experiment)
    for cell in expand_cells(experiment).cells:
        endpoint = driver.endpoint(cell.server, cell.protocol, ports=None)
        fields = load_settings_for(cell, experiment, None, server_kind=None, endpoint=endpoint)
        settings = LoadSettings(**fields)
        assert settings.host == "serving-box"
        assert settings.resolved_metadata_url is not None  # the served model is checked for every cell


V2_EXTERNAL = MATRIX.replace("servers: [tfserving, torchserve]", "servers: [triton]") + """\
target:
  kind: external
  servers:
    triton:
      rest: http://198.18.7.2:9000
      grpc: 198.18.7.2:9001
      kind: mlserver
      grpc_service: org.pytorch.serve.grpc.openinference.GRPCInferenceService
"""


def test_an_external_v2_server_needs_no_management_api_and_keeps_its_label_and_grpc_service() -> None:
    """Any Open Inference Protocol server under `triton`: its own REST API describes the model, over
    gRPC too (the endpoint itself, in the service it names)."""
    experiment = parse_experiment(V2_EXTERNAL)
    driver = driver_for(experiment)
    rest = driver.endpoint("triton", "rest-json", ports=None)
    grpc = driver.endpoint("triton", "grpc", ports=None)
    assert (rest.host, rest.port, rest.metadata_url) == ("198.18.7.2", 9000, "http://198.18.7.2:9000")
    assert grpc.port == 9001
    assert grpc.grpc_service == "org.pytorch.serve.grpc.openinference.GRPCInferenceService"
    assert grpc.describe()["grpc_service"] == grpc.grpc_service
    cell = next(c for c in expand_cells(experiment).cells if c.protocol == "grpc")
    fields = load_settings_for(cell, experiment, None, server_kind="mlserver", endpoint=grpc)
    settings = LoadSettings(**fields)
    assert settings.grpc_service == grpc.grpc_service and settings.server_kind == "mlserver"


def test_a_grpc_service_for_a_server_with_its_own_grpc_api_is_refused_naming_the_field() -> None:
    text = EXTERNAL.replace("      management: http://[fd00::7]:9081\n",
                            "      management: http://[fd00::7]:9081\n      grpc_service: x.Y\n")
    with pytest.raises(ExperimentError, match=r"target\.servers\.torchserve\.grpc_service: .*measure the V2"):
        parse_experiment(text)
