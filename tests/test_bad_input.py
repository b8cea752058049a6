"""Items 6 and 7 of the hardening issue: every user error is one line and exit code 2, checked
before anything loads, and a failed command leaves the cache and the models dir as they were."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctrust_tui.cli import main
from ctrust_tui.store import open_store


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and mtime: 'untouched' means equal before and after."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _one_line(res, message: str, code: int = 2) -> str:
    assert res.exit_code == code, res.output
    lines = res.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert message in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """tmp/models with a well-formed folder (weights are bytes: they are never loaded here) and a cache."""
    d = tmp_path / "models" / "ok"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    (d / "model.safetensors").write_bytes(b"\0" * 2048)
    open_store(tmp_path / "c.db").close()
    return tmp_path


def _invoke(root: Path, *args: str, **kw):
    return CliRunner().invoke(main, ["--db", str(root / "c.db"), "--models-dir", str(root / "models"), *args], **kw)


@pytest.mark.parametrize("args, message", [
    (["export", "1", "--out", "{root}/no/such/dir/t.md"], "folder {root}/no/such/dir does not exist"),
    (["export", "1", "--out", "{root}/models"], "is a directory"),
    (["prompts", "ethics", "--out", "{root}/missing/p.jsonl"], "folder {root}/missing does not exist"),
    (["run", "--seed", "-1", "--model", "ok"], "--seed -1 is out of range; use an integer from 0 to 4294967295"),
    (["run", "--seed", "4294967296", "--model", "ok"], "--seed 4294967296 is out of range"),
    (["compress", "ok", "rtn-4b-g32", "--seed", "-3"], "--seed -3 is out of range"),
    (["score", "ethics", "{root}/c.db", "--seed", "-1"], "--seed -1 is out of range"),
    (["run", "--max-batch", "0", "--model", "ok"], "--max-batch must be >= 1 (got 0)"),
    (["run", "--limit", "0", "--model", "ok"], "--limit must be >= 1 (got 0)"),
    (["runs", "--limit", "-5"], "--limit must be >= 1"),
    (["run", "--device", "tpu", "--model", "ok"], "unknown device 'tpu'; choose one of: auto, cpu, cuda, mps (or cuda:N)"),
    (["compress", "ok", "rtn-4b-g32", "--device", "gpu"], "unknown device 'gpu'"),
    (["score", "all", "{root}/c.db"], "`ctrust score` takes one dimension"),
    (["run", "--profile", "huge"], "Invalid value for '--profile'"),
    (["run", "--seed", "abc"], "'abc' is not a valid integer"),
    (["--bogus"], "No such option '--bogus'"),
    (["bogus"], "No such command 'bogus'"),
    (["models", "import"], "Missing argument 'PATH'"),
])
def test_user_errors_are_one_line_and_change_nothing(store_dir: Path, args: list[str], message: str) -> None:
    before = _tree(store_dir)
    res = _invoke(store_dir, *[a.format(root=store_dir) for a in args])
    line = _one_line(res, message.format(root=store_dir))
    if "Invalid value" in message or "No such" in message or "Missing" in message:
        assert "--help`)" in line  # click's four-line usage block, shortened to one line with a pointer
    assert _tree(store_dir) == before


def test_unknown_device_is_one_line_from_the_real_runner_too(store_dir: Path) -> None:
    """The runner's own device check (engine) and the CLI's are the same function: one line either way."""
    from ctrust_tui.engine.device import pick_device
    from ctrust_tui.errors import CtrustError

    with pytest.raises(CtrustError, match="unknown device 'tpu'"):
        pick_device("tpu")
    assert str(pick_device("CPU")) == "cpu"


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "pytorch_model.bin").write_bytes(b"\x80\x04" + b"\0" * 4096), "holds only pickle weights"),
    (lambda d: (d / "model.safetensors").symlink_to("/etc/hostname"), "links outside the model folder"),
    (lambda d: (d / "weights").mkdir() or (d / "weights" / "x.safetensors").symlink_to(d.parent.parent / "c.db"),
     "links outside the model folder"),
])
@pytest.mark.parametrize("cmd", [["run", "--model", "bad", "--dimensions", "ethics"], ["compress", "bad", "rtn-4b-g32"]])
def test_unsafe_model_folders_are_refused_before_loading(store_dir: Path, make, message: str, cmd) -> None:
    d = store_dir / "models" / "bad"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    make(d)
    before = _tree(store_dir)
    _one_line(_invoke(store_dir, *cmd), message)
    assert _tree(store_dir) == before


@pytest.mark.parametrize("content, message", [
    (b"text\x00\x01\x02binary" * 100, "looks binary (NUL bytes)"),
    (b"   \n\n", "is empty"),
    (b"caf\xe9 latin-1", "is not UTF-8 text (bad byte at offset 3)"),
])
@pytest.mark.parametrize("cmd", [["run", "--compression", "gptq-4b-g128", "--model", "nope"],
                                 ["compress", "nope", "gptq-4b-g128"]])
def test_bad_calibration_file_is_refused_before_the_model_is_even_resolved(store_dir, content, message, cmd) -> None:
    calib = store_dir / "calib.txt"
    calib.write_bytes(content)
    before = _tree(store_dir)
    _one_line(_invoke(store_dir, *cmd, "--calibration", str(calib)), message)  # not "model 'nope' not found"
    assert _tree(store_dir) == before


def test_calibration_jsonl_is_checked_up_front(store_dir: Path) -> None:
    calib = store_dir / "calib.jsonl"
    calib.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    _one_line(_invoke(store_dir, "compress", "ok", "wanda-2:4", "--calibration", str(calib)),
              "line 2 has no string field 'text'")


def test_over_long_name_and_empty_name(store_dir: Path) -> None:
    gguf = store_dir / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    before = _tree(store_dir)
    _one_line(_invoke(store_dir, "models", "import", str(gguf), "--name", "a" * 101), "--name is 101 characters long")
    _one_line(_invoke(store_dir, "models", "import", str(gguf), "--name", "  "), "--name is empty")
    assert _tree(store_dir) == before


def test_prompts_all_is_supported(store_dir: Path) -> None:
    res = _invoke(store_dir, "prompts", "all", "--profile", "smoke")
    assert res.exit_code == 0, res.output
    dims = {json.loads(line)["dimension"] for line in res.output.splitlines()}
    assert dims == {"mmlu", "advdemo", "advglue", "fairness", "ethics", "ood", "privacy", "stereotype", "toxicity"}


def test_internal_errors_are_one_line_with_a_traceback_log(store_dir: Path, monkeypatch, tmp_path) -> None:
    import tempfile

    import ctrust_tui.trust.jsonl as jsonl

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero in a scorer")

    monkeypatch.setattr(jsonl, "score_file", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("CTRUST_DEBUG", raising=False)
    line = _one_line(_invoke(store_dir, "score", "ethics", str(store_dir / "c.db")),
                     "internal error (ZeroDivisionError: division by zero in a scorer)", code=1)
    log = Path(line.split("traceback in ")[1].split(" ")[0])
    assert log.parent == tmp_path and "Traceback" in log.read_text() and "boom" in log.read_text()


# -- item 7: nothing written on failure ---------------------------------------------------------
def test_new_db_in_new_folders_is_not_created_for_a_missing_model(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "new.db"
    res = CliRunner().invoke(main, ["run", "--db", str(db), "--models-dir", str(tmp_path / "models"),
                                    "--model", "nope", "--dimensions", "ethics"])
    _one_line(res, "model 'nope' not found")
    assert not (tmp_path / "a").exists() and not (tmp_path / "models").exists()


def test_new_db_is_removed_again_when_the_model_fails_to_load(tmp_path: Path) -> None:
    """A folder that passes every cheap check but whose tokenizer transformers cannot read: the runner
    has already created the cache when the load fails; the CLI removes it and the folders it made."""
    from tiny_models import save_tiny_llama

    save_tiny_llama(tmp_path / "models" / "broken")
    (tmp_path / "models" / "broken" / "tokenizer.json").write_text('{"version": "1.0", "model": 42}')
    before = _tree(tmp_path)
    db = tmp_path / "a" / "b" / "new.db"
    res = CliRunner().invoke(main, ["run", "--db", str(db), "--models-dir", str(tmp_path / "models"),
                                    "--model", "broken", "--dimensions", "ethics", "--device", "cpu"])
    _one_line(res, "cannot load model")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("data, message", [
    (os.urandom(4096), "not a valid safetensors file (header length"),
    ((16).to_bytes(8, "little") + b'{"a": [1, 2, 3]}', "not a valid safetensors file"),
    ((2).to_bytes(8, "little") + b"{}" + b"\0" * 2048, "tensor data ends at byte 0 but the file holds"),
], ids=["random-bytes", "not-a-header", "data-past-the-tensors"])
def test_damaged_safetensors_are_one_line_before_anything_is_written(tmp_path: Path, data: bytes, message) -> None:
    d = tmp_path / "models" / "broken"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (d / "model.safetensors").write_bytes(data + b"\0" * max(0, 1100 - len(data)))
    before = _tree(tmp_path)
    res = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "a" / "new.db"), "--models-dir",
                                    str(tmp_path / "models"), "--model", "broken", "--dimensions", "ethics"])
    _one_line(res, message)
    assert _tree(tmp_path) == before


def _gguf_store(tmp_path: Path) -> tuple[Path, Path]:
    existing = tmp_path / "models" / "mine"
    existing.mkdir(parents=True)
    (existing / "config.json").write_text("{}")
    (existing / "model.safetensors").write_bytes(b"\1" * 2048)
    return tmp_path / "models", existing


@pytest.mark.parametrize("filename, content, message", [
    ("fake.gguf", b"<html>not a model</html>", "is not a GGUF file (no GGUF header); nothing was imported"),
    ("real-looking.gguf", b"GGUF\x03\0\0\0" + b"\0" * 64, "models/mine already exists; choose another --name"),
    ("model.bin", b"GGUF", "expected a .gguf file"),
])
def test_models_import_checks_the_file_first_and_never_replaces_a_folder(tmp_path, filename, content, message) -> None:
    models, _existing = _gguf_store(tmp_path)
    src = tmp_path / filename
    src.write_bytes(content)
    before = _tree(tmp_path)
    res = CliRunner().invoke(main, ["models", "import", str(src), "--name", "mine", "--models-dir", str(models)])
    _one_line(res, message)
    assert _tree(tmp_path) == before
