"""--dtype: auto is measured (never read from CPU flags), cached per machine and shape, explicit
dtypes the device cannot run are refused in one line, and the dtype keys every generation."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from ctrust_tui.cli import main
from ctrust_tui.engine import dtype as dt
from ctrust_tui.errors import CtrustError
from ctrust_tui.store.db import generation_key

CFG = SimpleNamespace(hidden_size=64, intermediate_size=128)


@pytest.fixture
def unpinned(monkeypatch):
    monkeypatch.delenv("CTRUST_DTYPE", raising=False)


def _fake_rates(fp32: float, bf16: float):
    calls = []

    def measure(shapes, **_):
        calls.append(shapes)
        return {"fp32": fp32, "bf16": bf16}

    return measure, calls


@pytest.mark.parametrize(("fp32", "bf16", "chosen"), [
    (290.0, 161.0, "fp32"),  # avx512_bf16 without AMX: bf16 1.8x slower
    (190.0, 400.0, "bf16"),  # AMX: bf16 about 2x faster
    (100.0, 105.0, "fp32"),  # within noise: a tie keeps the more exact precision
])
def test_auto_on_cpu_takes_the_measured_faster(tmp_path, monkeypatch, unpinned, fp32, bf16, chosen):
    measure, _ = _fake_rates(fp32, bf16)
    monkeypatch.setattr(dt, "measure", measure)
    monkeypatch.setenv("CTRUST_CACHE_DIR", str(tmp_path))
    choice = dt.resolve_dtype("auto", torch.device("cpu"), CFG)
    assert choice.name == chosen and choice.reason.startswith("auto: ") and "GFLOP/s" in choice.reason


def test_probe_is_cached_per_machine_and_shape(tmp_path, monkeypatch, unpinned):
    measure, calls = _fake_rates(290.0, 161.0)
    monkeypatch.setattr(dt, "measure", measure)
    cache = tmp_path / "probe.json"
    first = dt.cpu_probe(CFG, cache=cache)
    again = dt.cpu_probe(CFG, cache=cache)
    assert first == again and len(calls) == 1  # measured once
    other = dt.cpu_probe(SimpleNamespace(hidden_size=32, intermediate_size=64), cache=cache)
    assert len(calls) == 2 and other.shape != first.shape  # another model shape is measured
    data = json.loads(cache.read_text())
    assert len(data) == 2 and all(dt.machine_id() in k for k in data)
    monkeypatch.setattr(dt, "machine_id", lambda: "another machine")
    dt.cpu_probe(CFG, cache=cache)
    assert len(calls) == 3  # a different machine measures again


def test_a_damaged_probe_cache_is_measured_again(tmp_path, monkeypatch, unpinned):
    measure, calls = _fake_rates(290.0, 161.0)
    monkeypatch.setattr(dt, "measure", measure)
    cache = tmp_path / "probe.json"
    cache.write_text("{not json")
    assert dt.cpu_probe(CFG, cache=cache).chosen == "fp32" and len(calls) == 1
    assert json.loads(cache.read_text())  # rewritten whole


def test_the_real_measurement_is_short_and_positive(unpinned):
    rates = dt.measure(dt.model_shapes(CFG), seconds=0.02)
    assert set(rates) == {"fp32", "bf16"} and all(v > 0 for v in rates.values())


def test_pinned_env_replaces_auto_without_measuring(monkeypatch):
    monkeypatch.setattr(dt, "measure", lambda *a, **k: pytest.fail("measured"))
    monkeypatch.setenv("CTRUST_DTYPE", "fp32")
    assert dt.resolve_dtype("auto", torch.device("cpu"), CFG).dtype is torch.float32
    assert dt.bf16_is_faster(CFG) is False
    monkeypatch.setenv("CTRUST_DTYPE", "bf16")
    assert dt.bf16_is_faster(CFG) is True


def test_explicit_dtypes_and_unsupported_ones(monkeypatch):
    cpu = torch.device("cpu")
    assert dt.resolve_dtype("bf16", cpu).dtype is torch.bfloat16
    assert dt.resolve_dtype("fp32", cpu).reason == "fp32 (requested)"
    monkeypatch.setattr(dt, "supported", lambda device: ("fp32",))
    with pytest.raises(CtrustError, match=r"--dtype fp16: cpu cannot run it here; supported: fp32"):
        dt.resolve_dtype("fp16", cpu)
    with pytest.raises(CtrustError, match="choose one of auto, fp32, bf16, fp16"):
        dt.resolve_dtype("int8", cpu)


def test_cli_refuses_a_dtype_the_device_cannot_run_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(dt, "supported", lambda device: ("fp32", "bf16"))
    db = tmp_path / "cache.db"
    res = CliRunner().invoke(main, ["--db", str(db), "run", "--dtype", "fp16", "--dimensions", "ethics"])
    assert res.exit_code == 2, res.output
    assert "--dtype fp16: cpu cannot run it here; supported: fp32, bf16" in res.output
    assert "Traceback" not in res.output and not db.exists()


def test_dtype_keys_generations_and_float32_keeps_the_old_keys():
    args = ("fp", "none", "prompt", {"max_new_tokens": 8}, 0, 0)
    legacy = generation_key(*args)
    assert generation_key(*args, dtype="float32") == legacy  # caches made before --dtype stay valid
    bf16 = generation_key(*args, dtype="bfloat16")
    assert len({legacy, bf16, generation_key(*args, dtype="float16")}) == 3


def test_runs_in_another_dtype_never_reuse_cached_outputs(stub_models: Path, db_path: Path):
    from fakes import FakeBackend, fake_factory

    from ctrust_tui.compress.spec import parse_specs
    from ctrust_tui.runner import RunConfig, Runner
    from ctrust_tui.store import open_store

    cfg = RunConfig(model="stub-model", compressions=parse_specs("none"), dimensions=("ethics",), profile="smoke",
                    db_path=db_path, models_dir=stub_models, limit=3)
    fp32 = FakeBackend()
    (first,) = Runner(cfg, lambda e: None, backend_factory=fake_factory(fp32)).execute()
    again = FakeBackend()
    (same,) = Runner(cfg, lambda e: None, backend_factory=fake_factory(again)).execute()
    assert same == first and again.calls == []  # float32 again: all from the cache
    bf16 = FakeBackend()
    bf16.info["dtype"] = "bfloat16"
    (other,) = Runner(cfg, lambda e: None, backend_factory=fake_factory(bf16)).execute()
    assert other != first and sum(len(c) for c in bf16.calls) == 3  # nothing reused across precisions
    with open_store(db_path) as store:
        settings = {r.id: r.settings for r in store.runs()}
    assert "dtype" not in settings[first] and settings[other]["dtype"] == "bfloat16"
    with open_store(db_path) as store:
        fp32_outs = [i.outputs for i in store.run_items(first, "ethics")]
        bf16_outs = [i.outputs for i in store.run_items(other, "ethics")]
    # each run shows its own precision's outputs, one per prompt (the fake writes the same texts)
    assert all(len(o) == 1 for o in fp32_outs + bf16_outs)


def test_migration_to_v4_keeps_generations_and_marks_them_float32(tmp_path: Path):
    import sqlite3

    from ctrust_tui.store import open_store
    from ctrust_tui.store.schema import MIGRATIONS

    db = tmp_path / "old.db"
    with open_store(db) as store:
        store.put_generations([{"key": "k", "model_fingerprint": "fp", "compression": "none", "prompt_key": "p",
                                "rendered_hash": "h", "decoding": {}, "sample_index": 0, "seed": 0, "output": "o"}])
    conn = sqlite3.connect(db)  # make it a v3 file: no engine column
    conn.execute("DROP INDEX generations_run_lookup")
    conn.execute("ALTER TABLE generations DROP COLUMN engine")
    conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with open_store(db, readonly=True) as ro:  # a reader never migrates, and still reads
        assert ro.cached_outputs(["k"]) == {"k": "o"}
    with open_store(db) as store:
        assert store.conn.execute("SELECT engine, output FROM generations").fetchall() == [("", "o")]
        assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == \
            str(len(MIGRATIONS))

