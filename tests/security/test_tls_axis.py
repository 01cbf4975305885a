"""TLS as a matrix axis: where a matrix may ask for it, and how the report pairs each TLS line with the
same line in plaintext. No servers (the runner's real TLS cells: test_tls_axis_real.py)."""

from __future__ import annotations

import pytest

from analysis.topology import Topo, topologies
from inferload.experiments import BalancerConfig, ExperimentError, ServerConfig, parse_experiment
from inferload.stages import load_settings_for
from inferload_formats import MatrixEcho

MATRIX = """
name: tls
model: {classes: 64, features: 1024, seed: 0}
servers: [SERVERS]
protocols: [PROTOCOLS]
load: {mode: open, rates: [10]}
batch_sizes: [1]
server_configs:
  - name: plain
  - CONFIG
warmup_s: 0
duration_s: 2
"""


def _matrix(config: str, servers: str = "torchserve", protocols: str = "grpc", target: str = "") -> str:
    return (MATRIX.replace("SERVERS", servers).replace("PROTOCOLS", protocols).replace("CONFIG", config)
            + target)


@pytest.mark.parametrize(("config", "servers", "protocols", "target", "message"), [
    ("{name: tls, tls: true}", "tfserving", "rest-json, grpc", "",
     "server_configs.1.tls: TF Serving's REST API has no TLS"),
    ("{name: tls, tls: true, balancer: {kind: nginx}}", "torchserve", "grpc", "",
     "set `balancer.tls: true` instead of `tls`"),
    ("{name: tls, balancer: {tls: true}}", "torchserve", "grpc", "", "TLS on the balancer needs one"),
    ("{name: tls, tls: true}", "torchserve", "grpc", "target: {kind: compose}\n",
     "it needs `target: {kind: local}`, not compose"),
])
def test_tls_is_refused_where_it_cannot_be_set_up(config: str, servers: str, protocols: str, target: str,
                                                  message: str) -> None:
    with pytest.raises(ExperimentError, match=message.replace("`", ".").replace("{", ".").replace("}", ".")):
        parse_experiment(_matrix(config, servers, protocols, target))


@pytest.mark.parametrize(("config", "server", "described_over_tls"), [
    ("{name: tls, tls: true}", "torchserve", True),   # TorchServe's management API is TLS too
    ("{name: tls, tls: true}", "tfserving", False),   # TF Serving's REST API (its description) is not
    ("{name: tls, balancer: {kind: nginx, tls: true}}", "tfserving", True),  # nginx fronts TF Serving's REST
])
def test_the_load_of_a_tls_line_trusts_the_local_ca(
    config: str, server: str, described_over_tls: bool
) -> None:
    from inferload.cells import expand_cells
    from inferload.targets import LocalDriver
    from serving.ports import Ports

    experiment = parse_experiment(_matrix(config, server, "grpc"))
    ports = Ports()
    for cell in expand_cells(experiment).cells:
        endpoint = LocalDriver().endpoint(cell.server, cell.protocol, ports)
        fields = load_settings_for(cell, experiment, ports, server_kind=None, endpoint=endpoint)
        if cell.server_config_name == "plain":
            assert "security" not in fields
            continue
        assert fields["security"]["tls"] is True and fields["security"]["ca_cert"].endswith("ca.crt")
        assert fields["metadata_url"].startswith("https://" if described_over_tls else "http://")


def test_the_report_pairs_each_tls_config_with_the_plaintext_one_of_the_same_shape() -> None:
    configs = [ServerConfig(name="plain"), ServerConfig(name="own_tls", tls=True),
               ServerConfig(name="nginx", balancer=BalancerConfig(kind="nginx")),
               ServerConfig(name="nginx_tls", balancer=BalancerConfig(kind="nginx", tls=True))]
    # as the manifest echoes the resolved matrix, read through its typed view
    matrix = MatrixEcho.model_validate({"server_configs": [c.model_dump(mode="json") for c in configs]})
    topo = topologies(matrix)
    assert topo["own_tls"] == Topo("own_tls", 1, "none", "round_robin", False, tls=True)
    assert topo["own_tls"].shape == topo["plain"].shape
    assert topo["nginx_tls"].shape == topo["nginx"].shape != topo["plain"].shape
