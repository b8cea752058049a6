"""Item 1 of the hardening issue: a model folder never runs its own Python code, and never prompts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_models import add_remote_code, save_tiny_llama

from ctrust_tui.cli import main
from ctrust_tui.errors import CtrustError
from ctrust_tui.modelstore import check_model_folder

PACKAGE = Path(__file__).resolve().parents[1] / "ctrust_tui"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("base") / "tiny")


def _evil_store(tmp_path: Path, tiny_dir: Path, model_type: str = "evil_llama") -> tuple[Path, Path]:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_dir, models / "evil")
    marker = tmp_path / "MARKER"
    add_remote_code(models / "evil", marker, model_type=model_type)
    return models, marker


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["run", "--model", "evil", "--dimensions", "ethics", "--limit", "1", "--device", "cpu"],
    ["compress", "evil", "rtn-4b-g32", "--device", "cpu"],
])
def test_cli_refuses_custom_code_in_one_line_without_prompting(tmp_path, tiny_dir, argv) -> None:
    models, marker = _evil_store(tmp_path, tiny_dir)
    db = tmp_path / "c.db"
    # stdin answers "y" to any trust prompt transformers might show: it must never be read
    res = CliRunner().invoke(main, ["--db", str(db), "--models-dir", str(models), *argv], input="y\ny\n")
    assert res.exit_code == 2, res.output
    line = _one_error_line(res.output)
    assert "auto_map" in line and "never runs code" in line
    assert not marker.exists()
    assert not db.exists()  # nothing written for a refused model


@pytest.mark.parametrize("model_type", ["evil_llama", "llama"])
def test_loader_passes_trust_remote_code_false(tmp_path, tiny_dir, monkeypatch, model_type) -> None:
    """Defence in depth: with the folder check bypassed, transformers itself still runs no folder code.
    An unknown model_type then fails to load (one CtrustError); a known one loads the built-in class."""
    from ctrust_tui.engine import loader

    models, marker = _evil_store(tmp_path, tiny_dir, model_type)
    monkeypatch.setattr(loader, "check_model_folder", lambda path: None)
    monkeypatch.setattr("sys.stdin", None)  # any prompt would crash instead of waiting
    if model_type == "llama":
        loaded = loader.load_model(models / "evil", device="cpu")
        assert type(loaded.model).__name__ == "LlamaForCausalLM"
    else:
        with pytest.raises(CtrustError, match="cannot load model"):
            loader.load_model(models / "evil", device="cpu")
    assert not marker.exists()


def test_toxicity_classifier_folder_is_checked(tmp_path, tiny_dir) -> None:
    from ctrust_tui.engine.toxicity_hf import HFToxicityScorer

    models, marker = _evil_store(tmp_path, tiny_dir)
    with pytest.raises(CtrustError, match="auto_map"):
        HFToxicityScorer.from_folder(models / "evil")
    assert not marker.exists()


def test_tokenizer_auto_map_is_refused_too(tmp_path, tiny_dir) -> None:
    import json
    import shutil

    folder = tmp_path / "tok"
    shutil.copytree(tiny_dir, folder)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CtrustError, match="tokenizer_config.json asks to run Python code"):
        check_model_folder(folder)


def test_every_from_pretrained_call_passes_trust_remote_code_false() -> None:
    """Source check over the whole package: a new `from_pretrained` call cannot forget the flag."""
    calls = []
    for py in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(), str(py))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("trust_remote_code"), ast.Constant) and kw["trust_remote_code"].value is False
                if not ok and None in kw:  # **kwargs: the dict literal must carry the flag (engine loader)
                    ok = "trust_remote_code" in py.read_text()
                calls.append((f"{py.relative_to(PACKAGE)}:{node.lineno}", ok))
    assert len(calls) >= 7, calls  # loader (2), compress (2), GGUF import (2), toxicity scorer (2)
    assert [c for c, ok in calls if not ok] == []
