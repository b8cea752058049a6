"""`ctrust models export|pack|verify|list` on a tiny model: the happy path and every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_api import make_base
from transformers import AutoModelForCausalLM

from ctrust_tui.cli import main
from ctrust_tui.compress.cache import METADATA_FILE, read_metadata, write_json
from ctrust_tui.compress.packed import quiet_ct


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A base model, a packed rtn-4b-g32 variant with one scored run in a cache, a pruned variant."""
    from ctrust_tui.compress.cache import cache_fingerprint
    from ctrust_tui.store import open_store
    from ctrust_tui.trust.types import DimensionResult

    root = tmp_path_factory.mktemp("world")
    base = make_base(root / "src")
    models, db = root / "models", root / "cache.db"
    models.mkdir()
    for spec in ("rtn-4b-g32", "magnitude-2:4"):
        res = CliRunner().invoke(main, ["--models-dir", str(models), "compress", str(base), spec, "--device", "cpu"])
        assert res.exit_code == 0, res.output
    variant = models / "tiny--rtn-4b-g32"
    fp = cache_fingerprint(variant, read_metadata(variant))
    with open_store(db) as store:  # what `ctrust run` records, written through the store API
        for i, key in enumerate((fp, "another-model")):
            run_id, _ = store.open_run({"model_fingerprint": key, "i": i}, model_name="tiny", model_fingerprint=key,
                                       compression="rtn-4b-g32", dimensions=["ethics"], profile="smoke", seed=0,
                                       scorer=None, env={})
            store.put_score(run_id, DimensionResult("ethics", 61.5 + i, (50.0, 70.0), 0.1, 2,
                                                    scorer="judge|<b>x</b>", rules="paper"), total=2, final=True)
            store.set_run_status(run_id, "finished")
    return {"root": root, "base": base, "models": models, "db": db}


def cli(world, *args: str):
    return CliRunner().invoke(main, ["--models-dir", str(world["models"]), "--db", str(world["db"]), *args],
                              env={"COLUMNS": "250"})


def one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp"))


def test_list_shows_format_and_size(world):
    res = cli(world, "models", "list")
    assert res.exit_code == 0, res.output
    assert "packed 4-bit" in res.output and "dense float32" in res.output and "MB" in res.output


def test_export_compressed_tensors_is_self_contained_with_a_model_card(world):
    out = world["root"] / "export-ct"
    res = cli(world, "models", "export", "tiny--rtn-4b-g32", "--out", str(out))
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "README.md",
            "ctrust_provenance.json"} <= names
    assert METADATA_FILE not in names
    assert json.loads((out / "config.json").read_text())["quantization_config"]["quant_method"] == "compressed-tensors"
    card = (out / "README.md").read_text()
    assert "`rtn-4b-g32`" in card and "| #1 |" in card and "61.5 [50.0, 70.0]" in card
    assert "| #2 |" not in card and "62.5" not in card  # another model's run is not this variant's
    assert "judge\\|\\<b\\>x\\</b\\>" in card and "<b>" not in card  # cache text is inert
    with quiet_ct():
        packed = AutoModelForCausalLM.from_pretrained(out)
    variant = world["models"] / "tiny--rtn-4b-g32"
    with quiet_ct():
        same = AutoModelForCausalLM.from_pretrained(variant)
    for name, t in same.state_dict().items():
        assert torch.equal(packed.state_dict()[name], t), name

    dense = world["root"] / "export-dense"
    res = cli(world, "models", "export", "tiny--rtn-4b-g32", "--format", "dense", "--dtype", "float32",
              "--out", str(dense))
    assert res.exit_code == 0, res.output
    assert "quantization_config" not in json.loads((dense / "config.json").read_text())
    plain = AutoModelForCausalLM.from_pretrained(dense)
    for name, t in same.state_dict().items():
        assert torch.equal(plain.state_dict()[name], t), name
    assert leftovers(world["root"]) == []


def test_export_and_pack_bad_inputs_are_one_line_and_leave_nothing(world):
    root = world["root"]
    out = root / "bad-out"
    cases = [
        (("models", "export", "nope", "--out", str(out)), "no variant 'nope'"),
        (("models", "export", "bnb-nf4", "--out", str(out)), "bitsandbytes while the model loads"),
        (("models", "export", "tiny--bnb-nf4", "--out", str(out)), "bitsandbytes while the model loads"),
        (("models", "export", "tiny--rtn-4b-g32", "--out", str(root / "missing" / "x")), "does not exist"),
        (("models", "export", "tiny--magnitude-2_4", "--out", str(out)), "use --format dense"),
        (("models", "pack", "tiny--magnitude-2_4"), "pruned weights stay dense"),
        (("models", "pack", "tiny--rtn-4b-g32"), "already packed"),
        (("models", "export", str(world["base"]), "--out", str(out)), "not a compressed variant"),
    ]
    for args, fragment in cases:
        line = one_error_line(cli(world, *args))
        assert fragment in line, (args, line)
        assert not out.exists() and leftovers(root) == [] and leftovers(world["models"]) == []

    busy = root / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert "--force" in one_error_line(cli(world, "models", "export", "tiny--rtn-4b-g32", "--out", str(busy)))
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    res = cli(world, "models", "export", "tiny--rtn-4b-g32", "--out", str(busy), "--force")
    assert res.exit_code == 0 and not (busy / "keep.txt").exists() and (busy / "README.md").is_file()


def test_corrupted_or_tampered_variants_are_refused(world, tmp_path):
    from safetensors.torch import load_file, save_file

    models = tmp_path / "models"
    shutil.copytree(world["models"], models)
    variant = models / "tiny--rtn-4b-g32"
    state = load_file(variant / "model.safetensors")
    state.pop("model.layers.0.mlp.down_proj.weight_scale")
    save_file(state, variant / "model.safetensors", metadata={"format": "pt"})
    w = {"models": models, "db": world["db"]}
    out = tmp_path / "out"
    # the digests see it first; with digests re-recorded, the packed-layout check still does
    assert "model.safetensors" in one_error_line(cli(w, "models", "verify", "tiny--rtn-4b-g32"))
    assert "model.safetensors" in one_error_line(cli(w, "models", "export", "tiny--rtn-4b-g32", "--out", str(out)))
    from ctrust_tui.compress.integrity import record_files

    meta = read_metadata(variant)
    meta["integrity"] = record_files(variant)
    write_json(variant / METADATA_FILE, meta)
    line = one_error_line(cli(w, "models", "export", "tiny--rtn-4b-g32", "--out", str(out)))
    assert "down_proj.weight_scale is missing" in line
    assert not out.exists() and leftovers(tmp_path) == []
    from ctrust_tui.engine.loader import load_model
    from ctrust_tui.errors import CtrustError

    with pytest.raises(CtrustError, match="down_proj.weight_scale is missing"):
        load_model(variant, None, "cpu")


def test_verify_and_pack_of_a_legacy_folder(world, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    res = CliRunner().invoke(main, ["--models-dir", str(models), "compress", str(world["base"]), "rtn-3b-g32",
                                    "--device", "cpu"])
    assert res.exit_code == 0, res.output
    variant = models / "tiny--rtn-3b-g32"
    assert "every file matches" in CliRunner().invoke(main, ["--models-dir", str(models), "models", "verify",
                                                             "tiny--rtn-3b-g32"]).output
    # rewrite it as an earlier ctrust did: dense fake-quant weights, no digests
    with quiet_ct():
        dense = AutoModelForCausalLM.from_pretrained(variant)
    for p in variant.glob("*.safetensors"):
        p.unlink()
    dense.config.quantization_config = None
    del dense.config.quantization_config
    dense.save_pretrained(variant)
    meta = read_metadata(variant)
    for key in ("integrity", "weights_fingerprint", "storage"):
        meta.pop(key)
    write_json(variant / METADATA_FILE, meta)
    w = {"models": models, "db": world["db"]}
    assert "before ctrust recorded digests" in one_error_line(cli(w, "models", "verify", "tiny--rtn-3b-g32"))
    res = cli(w, "models", "pack", "tiny--rtn-3b-g32")
    assert res.exit_code == 0, res.output
    assert read_metadata(variant)["storage"]["format"] == "compressed-tensors"
    assert "every file matches" in cli(w, "models", "verify", "tiny--rtn-3b-g32").output
