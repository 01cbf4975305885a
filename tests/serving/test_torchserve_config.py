"""The generated config.properties: loopback addresses, raised size limits, workers and batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixed_ports import FIXED_PORTS

from models.artifacts import ArtifactLayout
from serving.settings import ServerSettings
from serving.torchserve import MAX_MESSAGE_BYTES, config_properties, launch_spec, mar_version, write_config


def read_properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def properties(tmp_path: Path) -> dict[str, str]:
    settings = ServerSettings(torchserve_workers=3, torchserve_batch_size=8, torchserve_max_batch_delay_ms=7)
    entries = config_properties(ports=FIXED_PORTS, settings=settings, model_store=tmp_path)
    path = write_config(tmp_path / "config.properties", entries)
    return read_properties(path)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("inference_address", "http://127.0.0.1:2000"),
        ("management_address", "http://127.0.0.1:2001"),
        ("metrics_address", "http://127.0.0.1:2002"),
        ("grpc_inference_address", "127.0.0.1"),
        ("grpc_inference_port", "2003"),
        ("grpc_management_address", "127.0.0.1"),
        ("grpc_management_port", "2004"),
        ("disable_token_authorization", "true"),
        ("enable_model_api", "false"),
        ("default_workers_per_model", "3"),
        ("load_models", "linear.mar"),
        ("metrics_mode", "prometheus"),
    ],
)
def test_entries(properties: dict[str, str], key: str, expected: str) -> None:
    assert properties[key] == expected


def test_size_limits_accept_a_json_instance_and_a_256_mib_binary_batch(properties: dict[str, str]) -> None:
    one_full_size_json_instance = 5_300_000
    assert int(properties["max_request_size"]) > 256 * 1024 * 1024 > one_full_size_json_instance
    assert int(properties["max_response_size"]) == MAX_MESSAGE_BYTES


def test_model_entry_carries_workers_and_batching(properties: dict[str, str]) -> None:
    model = json.loads(properties["models"])["linear"]["1"]
    assert model == {
        "marName": "linear.mar",
        "minWorkers": 3,
        "maxWorkers": 3,
        "batchSize": 8,
        "maxBatchDelay": 7,
        "responseTimeout": 120,
    }


def test_launch_gives_each_instance_its_own_temp_and_log_dirs(tmp_path: Path) -> None:
    layout = ArtifactLayout(tmp_path / "artifacts")
    spec = launch_spec(
        layout, settings=ServerSettings(), ports=FIXED_PORTS, workdir=tmp_path / "ts", tmpdir=tmp_path / "tmp"
    )
    assert spec.env["TMPDIR"] == spec.env["TEMP"] == str(tmp_path / "tmp")
    assert spec.env["LOG_LOCATION"] == str(tmp_path / "ts" / "logs")
    assert ["--start", "--foreground", "--ncs"] == list(spec.argv[3:6])
    assert spec.argv[spec.argv.index("--model-store") + 1] == str(layout.model_store.resolve())
    assert (tmp_path / "ts" / "config.properties").exists()


def test_model_settings_are_keyed_by_the_archives_version(tmp_path: Path) -> None:
    """TorchServe ignores `models` entries whose version differs from the .mar manifest's."""
    import zipfile

    mar = tmp_path / "linear.mar"
    with zipfile.ZipFile(mar, "w") as archive:
        archive.writestr(
            "MAR-INF/MANIFEST.json", json.dumps({"model": {"modelName": "linear", "modelVersion": "2.5"}})
        )
    assert mar_version(mar) == "2.5"
    assert mar_version(tmp_path / "missing.mar") == "1"
