"""Where `inferload export` puts things, so servers and tests find artifacts by name, not by guessing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from models.formats import check_schema
from models.linear import LinearSpec

MODEL_NAME = "linear"
MODEL_VERSION = 1
MODEL_JSON_SCHEMA = "inferload.model"
MODEL_JSON_VERSION = 1


class ModelJsonError(ValueError):
    """model.json is not `inferload.model` of the version read here, or has a bad field."""


@dataclass(frozen=True)
class ModelJson:
    """model.json (`inferload.model` v1): the exported model's spec and what wrote the artifacts.

    `export_all` writes it last, so it marks a complete export; `handler_sha256` tells a .mar packed
    with another handler (stale) from a current one.
    """

    name: str
    classes: int
    features: int
    seed: int
    versions: dict[str, str]
    handler_sha256: str
    created_at: str
    schema: str = field(default=MODEL_JSON_SCHEMA)
    schema_version: int = field(default=MODEL_JSON_VERSION)

    @property
    def spec(self) -> LinearSpec:
        return LinearSpec(classes=self.classes, features=self.features, seed=self.seed)

    def write(self, path: Path) -> Path:
        data = asdict(self)
        document = {"schema": data.pop("schema"), "schema_version": data.pop("schema_version"), **data}
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> ModelJson:
        """ModelJsonError names the file and, for another version, the version it says and the one read
        here; a missing or misspelt field is refused too."""
        try:
            document = json.loads(Path(path).read_text())
        except ValueError as exc:
            raise ModelJsonError(f"{path}: not valid JSON ({exc})") from exc
        check_schema(path, document, schema=MODEL_JSON_SCHEMA, version=MODEL_JSON_VERSION,
                     error=ModelJsonError,
                     redo="export the model again with this inferload (`inferload export --force`)")
        names = [f.name for f in fields(cls)]
        missing, unknown = [n for n in names if n not in document], sorted(set(document) - set(names))
        if missing or unknown:
            raise ModelJsonError(
                f"{path}: not a valid {MODEL_JSON_SCHEMA} document"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown field(s) {', '.join(unknown)}" if unknown else "")
            )
        return cls(**document)


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
