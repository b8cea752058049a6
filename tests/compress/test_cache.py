"""Variant folder naming, atomic writes, listing, and the model fingerprint (pure Python)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ctrust_tui.compress.cache import (
    FORMAT,
    METADATA_FILE,
    atomic_variant_dir,
    find_reusable,
    list_compressed,
    remove_stale_temp_dirs,
    variant_dir_name,
)
from ctrust_tui.compress.fingerprint import model_fingerprint
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.compress.types import CalibrationConfig
from ctrust_tui.errors import Cancelled, ModelNotFound


def fake_model(path: Path, weights: bytes = b"\x01" * 3000, n_files: int = 1) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    for i in range(n_files):
        (path / f"model-{i}.safetensors").write_bytes(weights)
    (path / "tokenizer.json").write_text("{}")
    return path


def fake_variant(models: Path, name: str, spec: str, fp: str, base: str = "tiny", cal: dict | None = None) -> Path:
    folder = fake_model(models / name)
    meta = {"format": FORMAT, "spec": spec, "base": {"name": base, "fingerprint": fp}, "calibration": cal}
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    return folder


def test_variant_dir_names():
    cal = CalibrationConfig()
    assert variant_dir_name("smol", parse_spec("gptq-4b-g128"), cal) == "smol--gptq-4b-g128"
    assert variant_dir_name("smol", parse_spec("wanda-2:4"), cal) == "smol--wanda-2_4"
    other = CalibrationConfig(source="wikitext2", nsamples=8)
    assert variant_dir_name("smol", parse_spec("awq-3b-g128"), other) == f"smol--awq-3b-g128--{other.tag}"
    # calibration does not apply to uncalibrated methods
    assert variant_dir_name("smol", parse_spec("rtn-4b-g128"), other) == "smol--rtn-4b-g128"
    assert variant_dir_name("smol", parse_spec("magnitude-0.5"), other) == "smol--magnitude-0.5"


def test_atomic_dir_success_replaces_and_failure_cleans(tmp_path):
    models = tmp_path / "models"
    with atomic_variant_dir(models, "v") as tmp:
        assert tmp.name.startswith(".tmp-v-")
        (tmp / "a.txt").write_text("1")
    assert (models / "v" / "a.txt").read_text() == "1"
    with atomic_variant_dir(models, "v") as tmp:  # replaces a previous (mismatching) variant
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in (models / "v").iterdir()) == ["b.txt"]
    for exc in (RuntimeError("boom"), Cancelled(), KeyboardInterrupt()):
        with pytest.raises(type(exc)), atomic_variant_dir(models, "w") as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise exc
    assert sorted(p.name for p in models.iterdir()) == ["v"]


def test_find_reusable_and_list(tmp_path):
    models = tmp_path / "models"
    cal = CalibrationConfig().to_dict()
    gptq = fake_variant(models, "tiny--gptq-4b-g128", "gptq-4b-g128", "fp1", cal=cal)
    fake_variant(models, "tiny--rtn-4b-g128", "rtn-4b-g128", "fp1")
    fake_variant(models, "abc--wanda-2_4", "wanda-2:4", "fp2", base="abc", cal=cal)
    fake_model(models / "tiny")  # the base itself: no compression.json, not listed
    (models / ".tmp-tiny--awq-4b-g128-1234").mkdir()  # in-flight or crashed: ignored
    spec = parse_spec("gptq-4b-g128")
    assert find_reusable(gptq, spec, "fp1", CalibrationConfig()) is not None
    assert find_reusable(gptq, spec, "other", CalibrationConfig()) is None
    assert find_reusable(gptq, spec, "fp1", CalibrationConfig(nsamples=8)) is None
    assert find_reusable(gptq, parse_spec("gptq-3b-g128"), "fp1", CalibrationConfig()) is None
    (gptq / "model-0.safetensors").unlink()
    assert find_reusable(gptq, spec, "fp1", CalibrationConfig()) is None  # incomplete folder
    names = [(f.name, m["spec"]) for f, m in list_compressed(models)]
    assert names == [("abc--wanda-2_4", "wanda-2:4"), ("tiny--gptq-4b-g128", "gptq-4b-g128"),
                     ("tiny--rtn-4b-g128", "rtn-4b-g128")]
    assert list_compressed(tmp_path / "missing") == []


def test_remove_stale_temp_dirs(tmp_path):
    old = tmp_path / ".tmp-x-1"
    new = tmp_path / ".tmp-y-2"
    old.mkdir()
    new.mkdir()
    past = time.time() - 7 * 3600
    os.utime(old, (past, past))
    assert remove_stale_temp_dirs(tmp_path) == [old]
    assert new.exists() and not old.exists()


def test_fingerprint_stable_and_sensitive(tmp_path):
    a = fake_model(tmp_path / "a", weights=b"\x00" * (3 << 20))
    fp = model_fingerprint(a)
    assert fp == model_fingerprint(a) and len(fp) == 64
    b = fake_model(tmp_path / "b", weights=b"\x00" * (3 << 20))
    assert model_fingerprint(b) == fp  # content, not location
    (b / "tokenizer.json").write_text('{"x": 1}')
    assert model_fingerprint(b) == fp  # tokenizer is not part of it
    w = bytearray(b"\x00" * (3 << 20))
    w[-5] = 1  # last MiB
    (b / "model-0.safetensors").write_bytes(bytes(w))
    assert model_fingerprint(b) != fp
    (b / "model-0.safetensors").write_bytes(b"\x00" * (3 << 20) + b"\x00")  # size
    assert model_fingerprint(b) != fp
    c = fake_model(tmp_path / "c", weights=b"\x00" * (3 << 20))
    (c / "config.json").write_text('{"model_type": "llama", "x": 1}')
    assert model_fingerprint(c) != fp
    with pytest.raises(ModelNotFound):
        model_fingerprint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound):
        model_fingerprint(tmp_path / "empty")


def test_fingerprint_is_fast_on_a_big_file(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text("{}")
    with open(big / "model.safetensors", "wb") as f:  # sparse 540 MB file
        f.truncate(540 * (1 << 20))
    model_fingerprint(big)
    t = time.perf_counter()
    model_fingerprint(big)
    assert time.perf_counter() - t < 0.25


def test_fingerprint_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, ctrust_tui.compress.fingerprint, ctrust_tui.compress.cache; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
