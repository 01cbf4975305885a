"""Each TorchServe response names the JSON library its worker used (X-Inferload-Json-Parser), so a
run against an image without orjson can be told apart from one with it: the stdlib fallback is much
slower on large bodies and would otherwise silently change what a benchmark measures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from torchserve_batch import http_json, make_context, prepare


def _load_handler(mar_dir: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, mar_dir / "torchserve_handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _response_header(module: ModuleType, mar_dir: Path) -> tuple[str | None, dict]:
    handler = module.LinearHandler()
    handler.initialize(make_context(mar_dir))
    context = make_context(mar_dir)
    data = prepare(context, [http_json({"instances": np.zeros((1, 1024)).tolist()})])
    [body] = handler.handle(data, context)
    headers = context.get_response_headers(0)
    return headers.get(module.JSON_PARSER_HEADER), json.loads(body)


def test_responses_name_orjson_when_the_worker_has_it(mar_dir: Path) -> None:
    header, body = _response_header(_load_handler(mar_dir, "handler_with_orjson"), mar_dir)
    assert header == "orjson" and len(body["class_ids"]) == 1


def test_responses_name_the_stdlib_json_when_orjson_is_missing(
    mar_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # `import orjson` now raises ImportError
    header, body = _response_header(_load_handler(mar_dir, "handler_without_orjson"), mar_dir)
    assert header == "json" and len(body["class_ids"]) == 1
