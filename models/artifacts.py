"""Where `inferload export` puts things, so servers and tests find artifacts by name, not by guessing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pydantic import Field

from inferload_formats import Document
from models.linear import LinearSpec

MODEL_NAME = "linear"
MODEL_VERSION = 1
MODEL_JSON_SCHEMA: Final = "inferload.model"
MODEL_JSON_VERSION = 1


class ModelJson(Document):
    """model.json (`inferload.model` v1): the exported model's spec and what wrote the artifacts.

    `export_all` writes it last, so it marks a complete export; `handler_sha256` tells a .mar packed
    with another handler (stale) from a current one. An unreadable one (another format or version,
    a bad field) is `inferload_formats.SchemaError`, naming the file.
    """

    REDO = "export the model again with this inferload (`inferload export --force`)"

    schema_: Literal["inferload.model"] = Field(default=MODEL_JSON_SCHEMA, alias="schema")
    schema_version: int = MODEL_JSON_VERSION
    name: str
    classes: int
    features: int
    seed: int
    versions: dict[str, str]
    handler_sha256: str
    created_at: str

    @property
    def spec(self) -> LinearSpec:
        return LinearSpec(classes=self.classes, features=self.features, seed=self.seed)


class ArtifactsMissingError(FileNotFoundError):
    """An artifact that a server or the floor needs is not on disk."""


@dataclass(frozen=True)
class ArtifactLayout:
    """The artifacts directory: model.json, a TF Serving base path, a TorchServe model store, a Triton
    model repository."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # accept str too

    @property
    def model_json(self) -> Path:
        return self.root / "model.json"

    @property
    def tf_base_path(self) -> Path:
        """TF Serving's --model_base_path: it holds numbered version directories."""
        return self.root / "tfserving" / MODEL_NAME

    @property
    def tf_version_dir(self) -> Path:
        return self.tf_base_path / str(MODEL_VERSION)

    @property
    def model_store(self) -> Path:
        """TorchServe's --model-store."""
        return self.root / "torchserve"

    @property
    def mar(self) -> Path:
        return self.model_store / f"{MODEL_NAME}.mar"

    @property
    def triton_repository(self) -> Path:
        """Triton's --model-repository: linear/config.pbtxt and linear/1/ (model.py, weights)."""
        return self.root / "triton"

    @property
    def triton_model_dir(self) -> Path:
        return self.triton_repository / MODEL_NAME

    @property
    def triton_version_dir(self) -> Path:
        return self.triton_model_dir / str(MODEL_VERSION)

    def read_model_json(self) -> ModelJson:
        self._require(self.model_json)
        return ModelJson.read(self.model_json)

    def spec(self) -> LinearSpec:
        return self.read_model_json().spec

    def check(self) -> ArtifactLayout:
        """Raise ArtifactsMissingError naming the first missing artifact and how to create it."""
        for path in (self.model_json, self.tf_version_dir / "saved_model.pb", self.mar,
                     self.triton_model_dir / "config.pbtxt"):
            self._require(path)
        return self

    def exists(self) -> bool:
        try:
            self.check()
        except ArtifactsMissingError:
            return False
        return True

    def _require(self, path: Path) -> None:
        if not path.exists():
            raise ArtifactsMissingError(
                f"missing model artifact {path}: create it with `inferload export --out {self.root}`"
            )
