from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctrust_tui.errors import ModelNotFound
from ctrust_tui.modelstore import check_weights, list_models, resolve_model


def _folder(root: Path, name: str, meta: dict | None = None, comp: dict | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 4096)
    if meta:
        (d / "ctrust_model.json").write_text(json.dumps(meta))
    if comp:
        (d / "compression.json").write_text(json.dumps(comp))
    return d


def test_list_groups_variants_under_base(tmp_path: Path) -> None:
    _folder(tmp_path, "base", {"note": "imported"})
    _folder(tmp_path, "base--wanda-2:4", comp={"spec": "wanda-2:4", "perplexity": {"before": 10, "after": 14}})
    _folder(tmp_path, "aaa")
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    (tmp_path / ".tmp-partial").mkdir()
    names = [(e.name, e.kind) for e in list_models(tmp_path)]
    assert names == [("aaa", "model"), ("base", "model"), ("base--wanda-2:4", "compressed"), ("x.gguf", "gguf")]


def test_resolve_name_path_and_errors(tmp_path: Path) -> None:
    d = _folder(tmp_path, "m1")
    assert resolve_model("m1", tmp_path).path == d.resolve()
    assert resolve_model(str(d), tmp_path / "elsewhere").name == "m1"
    with pytest.raises(ModelNotFound, match="looked in"):
        resolve_model("nope", tmp_path)
    with pytest.raises(ModelNotFound, match="import-default"):
        resolve_model("smollm2-135m-instruct", tmp_path)
    (tmp_path / "f.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFound, match="ctrust models import"):
        resolve_model(str(tmp_path / "f.gguf"), tmp_path)


def test_corrupt_model_is_one_clear_error(tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "config.json").write_text("{")
    with pytest.raises(ModelNotFound, match="no weight files"):
        check_weights(d)
    (d / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelNotFound, match="truncated"):
        check_weights(d)
