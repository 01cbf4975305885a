"""The machinery every results format shares: one error, one version check, one field validator.

Every file inferload writes starts with (or is) a JSON object naming its `schema` and
`schema_version`. Its owner defines it once, typed, and reads it with these three steps, worded the
same way for every format:
- `read_json`: the file parsed, or `SchemaError` naming it (missing, not JSON);
- `check_version`: `SchemaError` unless the document says this schema at a version read here, naming
  the file, the version it says, the version(s) read here, and what to do (upgrade for a newer file);
- `validate`: the document as its typed definition (a pydantic model or a dataclass), or one
  `SchemaError` naming the file and each bad field (a misspelt or unknown field is refused by name:
  never a fallback to another spelling, never silently dropped).
`Document` puts the three together for a format that is one JSON object; `write_json` writes one
atomically, so a reader (or a resumed run) sees the old file or the new one, never half of each.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

NEWER_HINT = "it was written by a newer inferload: upgrade inferload to read it"
OLDER_HINT = "re-run it with this inferload, or read it with the inferload that wrote it"
UNKNOWN_FIELD = "unknown field (misspelt, or from another version)"

T = TypeVar("T")


class SchemaError(ValueError):
    """A results file that is not of its format (schema, readable version, fields) or is malformed.

    The message names the file, what is wrong with it and what to do about it.
    """


def version_problem(where: object, schema: str, found: Any, readable: tuple[int, ...],
                    redo: str | None = None) -> str:
    """The refusal of a file whose format version this inferload does not read: the file, the version
    it says and the version(s) read here, and what to do (`redo`: how to write it again when older)."""
    reads = " or ".join(str(v) for v in readable)
    newer = isinstance(found, int) and not isinstance(found, bool) and found > max(readable)
    hint = NEWER_HINT if newer else (redo or OLDER_HINT)
    return f"{where}: {schema} format version {found!r}; this inferload reads version {reads}: {hint}"


def check_version(where: object, document: Any, schema: str, readable: int | tuple[int, ...], *,
                  redo: str | None = None) -> int:
    """The version of `document`, which must be `schema` at one of the `readable` versions; else
    SchemaError naming the file, what it says and what is read here (never guess a format)."""
    versions = (readable,) if isinstance(readable, int) else tuple(readable)
    if not isinstance(document, dict) or "schema" not in document:
        raise SchemaError(
            f'{where}: no format header (a JSON object with "schema": "{schema}" and "schema_version"); '
            "it was not written by inferload, or is damaged"
        )
    if document["schema"] != schema:
        raise SchemaError(f"{where}: schema is {document['schema']!r}, expected {schema!r}")
    version = document.get("schema_version")
    if version not in versions or isinstance(version, bool):
        raise SchemaError(version_problem(where, schema, version, versions, redo))
    return int(version)


def read_json(path: str | Path) -> Any:
    """A JSON results file parsed, or SchemaError naming it (missing, or not JSON)."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc})") from exc


def write_json(path: str | Path, document: Any) -> Path:
    """Write `document` as indented JSON, atomically (a sibling `.partial` file renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
                        + b"\n")
    os.replace(partial, path)
    return path


def field_problems(where: object, kind: str, exc: ValidationError) -> SchemaError:
    """A pydantic ValidationError as one SchemaError naming the file and each bad field."""
    details = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: "
        + (UNKNOWN_FIELD if e["type"] in ("extra_forbidden", "unexpected_keyword_argument") else
           "missing" if e["type"] in ("missing", "missing_argument", "missing_keyword_only_argument") else
           e["msg"])
        for e in exc.errors()
    )
    return SchemaError(f"{where}: not a valid {kind} document: {details}")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def validate(kind: type[T], data: Any, where: object, what: str) -> T:
    """`data` as `kind` (a pydantic model, or a dataclass declared with `strict_fields`), or one
    SchemaError naming `where` and every missing, unknown or mistyped field of `what`."""
    try:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind.model_validate(data)  # type: ignore[return-value]
        return _adapter(kind).validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise field_problems(where, what, exc) from exc


FORBID_EXTRA = ConfigDict(extra="forbid")


def strict_fields(cls: type[T]) -> type[T]:
    """Mark a dataclass of a results format so `validate` refuses a field it does not declare."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    cls.__pydantic_config__ = FORBID_EXTRA  # type: ignore[attr-defined]
    return cls


class Document(BaseModel):
    """A results file that is one JSON object: frozen, every field named exactly (a misspelt one is
    refused), its schema and version first.

    A format declares `schema_` (alias `schema`, its one value as default) and `schema_version`, and
    the versions it reads in `READABLE` (default: only its own) and how to redo an older file in `REDO`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    READABLE: ClassVar[tuple[int, ...] | None] = None
    REDO: ClassVar[str | None] = None

    @classmethod
    def schema_name(cls) -> str:
        return str(cls.model_fields["schema_"].default)

    @classmethod
    def version(cls) -> int:
        return int(cls.model_fields["schema_version"].default)

    @classmethod
    def readable_versions(cls) -> tuple[int, ...]:
        return cls.READABLE or (cls.version(),)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True)
        return {"schema": data.pop("schema"), "schema_version": data.pop("schema_version"), **data}

    def write(self, path: str | Path) -> Path:
        """Write the document to `path` atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def from_document(cls, document: Any, where: object) -> Self:
        """An already parsed document, checked for schema, version and fields (SchemaError naming `where`)."""
        check_version(where, document, cls.schema_name(), cls.readable_versions(), redo=cls.REDO)
        return validate(cls, document, where, cls.schema_name())

    @classmethod
    def read(cls, path: str | Path) -> Self:
        """The file at `path`; SchemaError naming it for another schema or version, or a bad field."""
        return cls.from_document(read_json(path), path)
