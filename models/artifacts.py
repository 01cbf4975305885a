"""Where `inferload export` puts things, so servers and tests find artifacts by name, not by guessing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models.linear import LinearSpec

MODEL_NAME = "linear"
MODEL_VERSION = 1


class ArtifactsMissingError(FileNotFoundError):
    """An artifact that a server or the floor needs is not on disk."""


@dataclass(frozen=True)
class ArtifactLayout:
    """The artifacts directory: model.json, a TF Serving base path, a TorchServe model store."""

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

    def read_model_json(self) -> dict:
        self._require(self.model_json)
        return json.loads(self.model_json.read_text())

    def spec(self) -> LinearSpec:
        return LinearSpec.from_dict(self.read_model_json())

    def check(self) -> ArtifactLayout:
        """Raise ArtifactsMissingError naming the first missing artifact and how to create it."""
        for path in (self.model_json, self.tf_version_dir / "saved_model.pb", self.mar):
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
