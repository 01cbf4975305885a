"""The override files serving/compose.py generates, one per server config of every shipped matrix and
per CPU limit: each validates with `docker-compose config` (skipped, with the reason, when
docker-compose is missing) and, resolved together with docker-compose.yml, passes the checks the real
servers would impose: batching flags only together, each server told the same CPU count as its limit,
ports on 127.0.0.1 only, healthchecks that wait for the model. No Docker engine runs here, so nothing
is started; this is what can be proved statically."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from capabilities import need

from inferload.experiments import load_experiment
from inferload.stages import server_settings_for
from serving.compose import ComposeError, validate_compose
from serving.compose_override import (
    COMPOSE_FILE,
    GENERATED_MOUNT,
    REST_THREADS_PER_CPU,
    ComposeLimits,
    write_override,
)
from serving.ports import Ports
from serving.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
MATRICES = sorted((ROOT / "experiments").glob("*.yaml"))
CPU_LIMITS = (1, 2, 4)


def _configs() -> dict[ServerSettings, list[tuple[str, str]]]:
    """Each distinct server config of the shipped matrices -> the (matrix, config name)s that use it.

    The override depends on the settings alone (and the CPU limit), so configs that resolve to the same
    settings (most matrices' `default`) give the same file: each distinct one is checked once."""
    configs: dict[ServerSettings, list[tuple[str, str]]] = {}
    for matrix in MATRICES:
        for config in load_experiment(matrix).server_configs:
            settings = ServerSettings(**server_settings_for(config, None))
            configs.setdefault(settings, []).append((matrix.stem, config.name))
    return configs


CONFIGS = _configs()
CASES = [
    pytest.param(settings, cpus, id=f"{names[0][0]}-{names[0][1]}-{cpus}cpu")
    for settings, names in CONFIGS.items()
    for cpus in CPU_LIMITS
]


def test_every_shipped_matrix_contributes_configs() -> None:
    named = {matrix for names in CONFIGS.values() for matrix, _ in names}
    assert MATRICES and named == {m.stem for m in MATRICES}
    assert sum(len(names) for names in CONFIGS.values()) == sum(
        len(load_experiment(m).server_configs) for m in MATRICES
    )
    assert any(settings.tfserving_batching for settings in CONFIGS)  # both kinds of TF Serving command
    assert any(not settings.tfserving_batching for settings in CONFIGS)


def _compose() -> str:
    need("compose")
    compose = shutil.which("docker-compose")
    assert compose is not None
    return compose


def _flag(command: list[str], name: str) -> str | None:
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    assert len(values) <= 1, f"--{name} given twice: {command}"
    return values[0] if values else None


def _properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _host_path(services: dict, service: str, target: str) -> Path:
    """The host file or directory mounted at `target` (compose may print volumes long or short form)."""
    for volume in services[service]["volumes"]:
        if isinstance(volume, dict):
            source, destination = volume["source"], volume["target"]
        else:
            source, destination = volume.split(":")[:2]
        if destination == target:
            return Path(source)
    raise AssertionError(f"{service}: nothing mounted at {target}: {services[service]['volumes']}")


@pytest.mark.parametrize(("settings", "cpus"), CASES)
def test_generated_override_validates_and_matches_its_server_config(
    settings: ServerSettings, cpus: int, tmp_path: Path
) -> None:
    ports = Ports.free()
    override, env_file = write_override(tmp_path, settings, ComposeLimits(cpus=cpus), ports)
    # docker-compose.yml + the override with the env file, as compose validated and resolved them
    services = validate_compose(COMPOSE_FILE, [override], env_file=env_file, program=[_compose()])["services"]
    tfs, ts = services["tfserving"], services["torchserve"]

    # TF Serving: batching flags together or not at all, and the file they name exists.
    command = tfs["command"]
    batching_file = _flag(command, "batching_parameters_file")
    assert (_flag(command, "enable_batching") == "true") is settings.tfserving_batching
    assert (batching_file is not None) is settings.tfserving_batching
    if batching_file is not None:
        host_dir = _host_path(services, "tfserving", f"{GENERATED_MOUNT}/tfserving")
        text = (host_dir / Path(batching_file).name).read_text()
        assert f"max_batch_size {{ value: {settings.tfserving_max_batch_size} }}" in text
        assert f"batch_timeout_micros {{ value: {settings.tfserving_batch_timeout_us} }}" in text

    # The same CPU count everywhere: the limit and what each server sizes its pools by.
    assert float(tfs["cpus"]) == float(ts["cpus"]) == cpus
    assert _flag(command, "tensorflow_intra_op_parallelism") == str(cpus)
    assert _flag(command, "tensorflow_inter_op_parallelism") == str(cpus)
    assert _flag(command, "rest_api_num_threads") == str(REST_THREADS_PER_CPU * cpus)
    properties = _properties(_host_path(services, "torchserve", "/home/model-server/config.properties"))
    assert properties["number_of_netty_threads"] == properties["netty_client_threads"] == str(cpus)
    assert ts["environment"]["TS_NUMBER_OF_NETTY_THREADS"] == str(cpus)
    assert int(ts["environment"]["OMP_NUM_THREADS"]) * settings.torchserve_workers <= max(
        cpus, settings.torchserve_workers
    )

    # TorchServe registers the model with the config's workers and batching.
    (versions,) = json.loads(properties["models"]).values()
    (model,) = versions.values()
    assert (model["minWorkers"], model["maxWorkers"]) == (settings.torchserve_workers,) * 2
    assert (model["batchSize"], model["maxBatchDelay"]) == (
        settings.torchserve_batch_size,
        settings.torchserve_max_batch_delay_ms,
    )

    # Published on loopback only, on the ports asked for.
    for service, published in ((name, ports.of(name)) for name in ("tfserving", "torchserve", "triton")):
        mappings = services[service]["ports"]
        hosts = {m["host_ip"] if isinstance(m, dict) else m.split(":")[0] for m in mappings}
        assert hosts == {"127.0.0.1"}
        host_ports = {
            int(m["published"]) if isinstance(m, dict) else int(m.split(":")[1]) for m in mappings
        }
        assert host_ports == set(published.values())

    # Healthchecks wait for the model: TF Serving's version AVAILABLE, all TorchServe workers READY.
    tf_check = " ".join(tfs["healthcheck"]["test"])
    assert "/v1/models/linear" in tf_check and '"AVAILABLE"' in tf_check
    ts_check = " ".join(ts["healthcheck"]["test"])
    assert "/models/linear" in ts_check and "'READY'" in ts_check
    assert re.search(rf">= {settings.torchserve_workers} else 1", ts_check)
    assert tfs["restart"] == ts["restart"] == "no"  # a crash fails the cell instead of looping

    # Triton: its model config (dynamic batching, instances, response cache) mounted over the export's,
    # the cache's size on its command line exactly when the config enables it, told the CPU count.
    triton = services["triton"]
    config = _host_path(services, "triton", "/models/linear/config.pbtxt").read_text()
    assert ("dynamic_batching {" in config) is settings.triton_dynamic_batching
    assert ("response_cache { enable: true }" in config) is settings.triton_response_cache
    assert f"count: {settings.triton_instances} kind: KIND_CPU" in config
    assert "EXECUTION_ENV_PATH" not in config  # the image's own Python runs the model
    cache = _flag(triton["command"], "cache-config")
    assert (cache is not None) is settings.triton_response_cache
    assert float(triton["cpus"]) == cpus and _flag(triton["command"], "http-thread-count") == str(cpus)
    assert int(triton["environment"]["OMP_NUM_THREADS"]) * settings.triton_instances <= max(
        cpus, settings.triton_instances)
    assert "/v2/models/linear/ready" in " ".join(triton["healthcheck"]["test"]) and triton["restart"] == "no"


def test_a_stale_batching_file_is_removed_when_batching_goes_off(tmp_path: Path) -> None:
    limits, ports = ComposeLimits(), Ports()
    write_override(tmp_path, ServerSettings(tfserving_batching=True), limits, ports)
    assert (tmp_path / "tfserving" / "batching_parameters.txt").exists()
    write_override(tmp_path, ServerSettings(), limits, ports)
    assert not (tmp_path / "tfserving" / "batching_parameters.txt").exists()


def test_a_broken_override_is_refused_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text('version: "2.4"\nservices:\n  tfserving:\n    cpus: lots\n')
    with pytest.raises(ComposeError, match=r"broken\.yml.*do not validate"):
        validate_compose(COMPOSE_FILE, [broken], program=[_compose()])


@pytest.mark.parametrize("cpus", [0, -1, 1.5, True])
def test_cpu_limit_must_be_a_whole_number_of_cpus(cpus: object) -> None:
    with pytest.raises(ValueError, match="cpus must be a whole number"):
        ComposeLimits(cpus=cpus)  # type: ignore[arg-type]
