"""Packed (compressed-tensors) variants: exact grids, bit-exact packing, loading, pack in place.

Tiny random Llamas with in-test tokenizers (no downloads). Hidden size 96 with groups of 64 makes
the spec's last group shorter (96 = 64 + 32), the case SmolLM2 (576 inputs, g128) hits.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from test_api import make_tokenizer
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from ctrust_tui.compress.api import compress_model
from ctrust_tui.compress.cache import METADATA_FILE, read_metadata, write_json
from ctrust_tui.compress.grid import OffGrid, packed_group_size, recover_grid
from ctrust_tui.compress.integrity import TamperedVariant
from ctrust_tui.compress.methods import apply_method
from ctrust_tui.compress.packed import (
    NotPackable,
    check_packed_folder,
    pack_model,
    quiet_ct,
    save_packed,
    unpackable_reason,
)
from ctrust_tui.compress.quantizer import quantize_groups
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.compress.types import CalibrationConfig
from ctrust_tui.compress.variants import pack_variant, resolve_variant
from ctrust_tui.errors import CtrustError

TINY_CAL = CalibrationConfig(source="c4", nsamples=4, seqlen=32, seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_llama(vocab: int = 256, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=96, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=vocab, max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


def bits_of(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().contiguous().view(torch.int32)


# ---------------------------------------------------------------------------------------------
# grid recovery


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("group", [32, 64, -1])
@pytest.mark.parametrize("sym", [True, False])
def test_recover_grid_reproduces_every_quantizer_output_bit_for_bit(bits, group, sym):
    torch.manual_seed(bits * 7 + group)
    W = torch.randn(48, 96) * 0.05
    W[3] = 0.0  # an all-zero row
    W[5, :40] = W[5, :40].abs()  # a row/group with no negative value (the sym quirk)
    Q = quantize_groups(W, bits, group, sym)
    grid = recover_grid(Q, bits, group, sym)
    assert torch.equal(bits_of(grid.dequantize()), bits_of(Q))
    half = 2 ** (bits - 1)
    assert grid.codes.min() >= -half and grid.codes.max() <= half - 1
    assert grid.group_size == packed_group_size(group, 96)
    if group != -1:  # stored with a smaller group than asked: the spec's scales are repeated
        finer = recover_grid(Q, bits, group, sym, packed_group=16)
        assert finer.group_size == 16 and torch.equal(bits_of(finer.dequantize()), bits_of(Q))
    if sym:
        assert int(grid.zero.abs().max()) == 0


def test_packed_group_size_splits_a_short_last_group():
    assert packed_group_size(128, 576) == 64 and packed_group_size(128, 1536) == 128
    assert packed_group_size(128, 576, 1536) == 64  # SmolLM2-135M at g128: one size for every module
    assert packed_group_size(64, 96) == 32 and packed_group_size(-1, 96) == -1


def test_off_grid_weights_are_refused_naming_the_place():
    with pytest.raises(OffGrid, match="layer.q_proj: group 0"):
        recover_grid(torch.randn(8, 64), 4, 32, True, where="layer.q_proj")
    asym4 = quantize_groups(torch.randn(8, 64), 4, 32, sym=False)
    with pytest.raises(OffGrid, match="more than a asymmetric 3-bit grid"):
        recover_grid(asym4, 3, 32, False)


# ---------------------------------------------------------------------------------------------
# exactness: packed -> from_pretrained == fake-quant, bit for bit and in greedy outputs


def _fake_quant(spec_text: str) -> LlamaForCausalLM:
    from tiny_llama import ids

    model = tiny_llama()
    spec = parse_spec(spec_text)
    if spec.method == "awq":
        from ctrust_tui.compress.awq import apply_awq

        apply_awq(model, spec, ids(), device="cpu")
    else:
        apply_method(model, spec, ids() if spec.calibrated else None, device="cpu")
    return model


PROMPTS = torch.randint(3, 256, (50, 10), generator=torch.Generator().manual_seed(5))  # 50 quick prompts


@pytest.mark.parametrize("spec_text", ["rtn-4b-g64", "rtn-3b-g32", "rtn-2b-g32-asym", "rtn-8b-pc-asym",
                                       "gptq-4b-g32-noact", "gptq-3b-pc", "gptq-4b-g64-static", "awq-4b-g32"])
def test_packed_checkpoint_loads_as_the_fake_quant_model(spec_text, tmp_path):
    fake = _fake_quant(spec_text)
    reference = {k: v.clone() for k, v in fake.state_dict().items()}
    greedy = fake.generate(PROMPTS, attention_mask=torch.ones_like(PROMPTS), max_new_tokens=6, do_sample=False,
                           pad_token_id=0)
    packed = copy.deepcopy(fake)
    info = pack_model(packed, parse_spec(spec_text))
    save_packed(packed, info, tmp_path / "v")
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    q = cfg["quantization_config"]
    assert q["quant_method"] == "compressed-tensors" and q["format"] == "pack-quantized"
    assert {g["weights"]["num_bits"] for g in q["config_groups"].values()} == {parse_spec(spec_text).bits}
    check_packed_folder(tmp_path / "v")
    with quiet_ct():  # the plain call a user makes, on CPU
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "v").eval()
    got = loaded.state_dict()
    for name, tensor in reference.items():
        assert torch.equal(bits_of(got[name]), bits_of(tensor)), name
    again = loaded.generate(PROMPTS, attention_mask=torch.ones_like(PROMPTS), max_new_tokens=6, do_sample=False,
                            pad_token_id=0)
    assert torch.equal(again, greedy)


def test_packed_is_smaller_and_act_order_groups_and_pruning_stay_dense():
    assert unpackable_reason(parse_spec("gptq-4b-g128")) and "g_idx" in unpackable_reason(parse_spec("gptq-4b-g128"))
    assert unpackable_reason(parse_spec("wanda-2:4")) and "sparse" in unpackable_reason(parse_spec("wanda-2:4"))
    assert "gptq-4b-g128-static" in unpackable_reason(parse_spec("gptq-4b-g128"))
    for ok in ("gptq-4b-pc", "gptq-4b-g128-noact", "gptq-4b-g128-static", "awq-4b-g128", "rtn-3b-g128",
               "awq-4b-g128-sym"):
        assert unpackable_reason(parse_spec(ok)) is None
    model = tiny_llama()
    with pytest.raises(NotPackable, match="model.layers.0.self_attn.q_proj: group 0"):
        pack_model(model, parse_spec("rtn-4b-g32"))  # dense random weights are on no 4-bit grid


# ---------------------------------------------------------------------------------------------
# compress_model writes packed variants, records digests, verifies on reuse


def make_base(root: Path, seed: int = 0) -> Path:
    path = root / "tiny"
    tok = make_tokenizer()
    tiny_llama(vocab=len(tok), seed=seed).save_pretrained(path)
    tok.save_pretrained(path)
    (path / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    return path


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return make_base(tmp_path_factory.mktemp("base"))


def test_compress_model_stores_quantized_variants_packed(base_dir, tmp_path):
    models = tmp_path / "models"
    out = compress_model(base_dir, parse_spec("rtn-4b-g32"), base_name="tiny", models_dir=models, device="cpu",
                         measure_perplexity=False)
    meta = out.metadata
    assert meta["storage"]["format"] == "compressed-tensors"
    assert meta["storage"]["compression_format"] == "pack-quantized"
    assert set(meta["integrity"]["files"]) == {"config.json", "model.safetensors"}
    assert out.fingerprint == meta["weights_fingerprint"]["value"]
    dense = compress_model(base_dir, parse_spec("rtn-4b-g32"), base_name="tiny-dense", models_dir=models,
                           device="cpu", measure_perplexity=False, pack=False)
    packed_bytes = meta["storage"]["bytes_on_disk"]
    assert packed_bytes < dense.metadata["storage"]["bytes_on_disk"]
    assert (out.path / "chat_template.jinja").is_file() and (out.path / "tokenizer.json").is_file()
    from ctrust_tui.engine.loader import load_model

    loaded = load_model(out.path, parse_spec("rtn-4b-g32"), "cpu")
    ref = AutoModelForCausalLM.from_pretrained(dense.path)
    for name, tensor in ref.state_dict().items():
        assert torch.equal(bits_of(loaded.model.state_dict()[name]), bits_of(tensor)), name
    # a spec without a packed form says why in compression.json
    pruned = compress_model(base_dir, parse_spec("magnitude-2:4"), base_name="tiny", models_dir=models,
                            device="cpu", measure_perplexity=False)
    assert pruned.metadata["storage"]["format"] == "dense" and "sparse" in pruned.metadata["storage"]["reason"]


def test_sampled_digest_is_cheap_and_the_full_digest_sees_every_byte(tmp_path):
    from ctrust_tui.compress.integrity import SAMPLE_CHUNK, record_files, verify_files

    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    blob = bytearray(torch.randint(0, 256, (5 << 20,), dtype=torch.uint8).numpy().tobytes())
    (folder / "model.safetensors").write_bytes(bytes(blob))
    record = record_files(folder)
    verify_files(folder, record, full=True)
    blob[SAMPLE_CHUNK + 10] ^= 1  # between the first and the second sampled chunk
    (folder / "model.safetensors").write_bytes(bytes(blob))
    verify_files(folder, record)  # the cheap check does not read that byte
    with pytest.raises(TamperedVariant, match="model.safetensors differs from its sha256"):
        verify_files(folder, record, full=True)
    (folder / "model.safetensors").write_bytes(bytes(blob[:-1]))
    with pytest.raises(TamperedVariant, match="model.safetensors is 5242879 bytes"):
        verify_files(folder, record)
    (folder / "config.json").unlink()
    with pytest.raises(TamperedVariant, match="config.json recorded in compression.json is missing"):
        verify_files(folder, record)


def test_reuse_refuses_other_weights_and_full_verify_sees_any_byte(base_dir, tmp_path):
    models = tmp_path / "models"
    spec = parse_spec("rtn-4b-g32")
    first = compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu", measure_perplexity=False)
    other = compress_model(base_dir, parse_spec("rtn-3b-g32"), base_name="tiny", models_dir=models, device="cpu",
                           measure_perplexity=False)
    weights = first.path / "model.safetensors"
    saved = weights.read_bytes()
    shutil.copy2(other.path / "model.safetensors", weights)  # another model's weights, valid-looking json
    with pytest.raises(TamperedVariant, match="model.safetensors"):
        compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu", measure_perplexity=False)
    weights.write_bytes(saved)
    assert compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu",
                          measure_perplexity=False).reused
    data = bytearray(saved)
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(TamperedVariant, match="model.safetensors"):
        compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu", measure_perplexity=False,
                       verify=True)
    (first.path / "extra.safetensors").write_bytes(saved)
    with pytest.raises(TamperedVariant, match="extra.safetensors is not one of the files"):
        compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu", measure_perplexity=False)


def test_tampered_sibling_perplexity_is_not_reused(base_dir, tmp_path, monkeypatch):
    from ctrust_tui.compress import api

    models = tmp_path / "models"
    calls = []
    real = api._sibling_perplexity

    def spy(*a):
        calls.append(real(*a))
        return calls[-1]

    monkeypatch.setattr(api, "_sibling_perplexity", spy)
    first = compress_model(base_dir, parse_spec("rtn-4b-g32"), base_name="tiny", models_dir=models, device="cpu")
    assert calls == [None] and first.metadata["perplexity"]["before_source"] == "measured"
    # a sibling with forged weights: its recorded "before" must not be trusted
    meta = read_metadata(first.path)
    meta["perplexity"]["before"] = 1.0
    write_json(first.path / METADATA_FILE, meta)
    _corrupt = first.path / "model.safetensors"
    _corrupt.write_bytes(_corrupt.read_bytes()[:-8] + b"\0" * 8)
    second = compress_model(base_dir, parse_spec("rtn-8b-g32"), base_name="tiny", models_dir=models, device="cpu")
    assert calls[-1] is None and second.metadata["perplexity"]["before"] != 1.0
    assert second.metadata["perplexity"]["before_source"] == "measured"


# ---------------------------------------------------------------------------------------------
# ctrust models pack: legacy fake-quant folders, in place


def test_pack_in_place_keeps_the_cache_key_and_weights(base_dir, tmp_path):
    models = tmp_path / "models"
    spec = parse_spec("rtn-3b-g64")
    legacy = compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu",
                            measure_perplexity=False, pack=False)
    meta = read_metadata(legacy.path)
    del meta["integrity"], meta["weights_fingerprint"], meta["storage"]  # as an earlier ctrust wrote it
    write_json(legacy.path / METADATA_FILE, meta)
    from ctrust_tui.compress.fingerprint import model_fingerprint

    old_key = model_fingerprint(legacy.path)
    dense = AutoModelForCausalLM.from_pretrained(legacy.path).state_dict()
    folder, meta = resolve_variant("tiny--rtn-3b-g64", models)
    new = pack_variant(folder, meta)
    assert new["storage"]["format"] == "compressed-tensors" and new["weights_fingerprint"]["value"] == old_key
    assert sorted(p.name for p in models.iterdir()) == ["tiny--rtn-3b-g64"]  # no temp folders left
    again = compress_model(base_dir, spec, base_name="tiny", models_dir=models, device="cpu", measure_perplexity=False)
    assert again.reused and again.fingerprint == old_key  # cached generations stay valid
    with quiet_ct():
        got = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    for name, tensor in dense.items():
        assert torch.equal(bits_of(got[name]), bits_of(tensor)), name
    with pytest.raises(CtrustError, match="already packed"):
        pack_variant(folder, read_metadata(folder))


def test_pack_refuses_off_grid_weights_naming_the_module_and_changes_nothing(base_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    models = tmp_path / "models"
    legacy = compress_model(base_dir, parse_spec("rtn-4b-g32"), base_name="tiny", models_dir=models, device="cpu",
                            measure_perplexity=False, pack=False)
    weights = legacy.path / "model.safetensors"
    state = load_file(weights)
    state["model.layers.1.mlp.up_proj.weight"][0, 0] += 1e-3
    save_file(state, weights, metadata={"format": "pt"})
    meta = read_metadata(legacy.path)
    del meta["integrity"]  # an earlier ctrust's folder: nothing to compare digests with
    write_json(legacy.path / METADATA_FILE, meta)
    before = {p.name: p.read_bytes() for p in legacy.path.iterdir()}
    with pytest.raises(CtrustError, match=r"model\.layers\.1\.mlp\.up_proj: group 0"):
        pack_variant(*resolve_variant("tiny--rtn-4b-g32", models))
    assert {p.name: p.read_bytes() for p in legacy.path.iterdir()} == before
    assert sorted(p.name for p in models.iterdir()) == ["tiny--rtn-4b-g32"]
    with pytest.raises(CtrustError, match="cannot pack wanda-2:4: pruned weights stay dense"):
        pack_variant(legacy.path, {**meta, "spec": "wanda-2:4"})


# ---------------------------------------------------------------------------------------------
# damaged packed folders fail with one line before anything loads


@pytest.fixture(scope="module")
def packed_folder(base_dir, tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("m")
    return compress_model(base_dir, parse_spec("rtn-4b-g32-asym"), base_name="tiny", models_dir=models,
                          device="cpu", measure_perplexity=False).path


def _damage(folder: Path, dest: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, dest)
    state = load_file(dest / "model.safetensors")
    edit(state)
    save_file(state, dest / "model.safetensors", metadata={"format": "pt"})
    return dest


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("model.layers.0.mlp.down_proj.weight_scale"), "down_proj.weight_scale is missing"),
    (lambda s: s.pop("model.layers.1.self_attn.k_proj.weight_zero_point"), "k_proj.weight_zero_point is missing"),
    (lambda s: s.update({"model.layers.0.self_attn.q_proj.weight_packed":
                         s["model.layers.0.self_attn.q_proj.weight_packed"][:, :-1].contiguous()}),
     "q_proj.weight_packed has shape"),
    (lambda s: s.update({"model.layers.0.mlp.gate_proj.weight": torch.zeros(192, 96)}),
     "gate_proj.weight is stored dense"),
])
def test_damaged_packed_folder_is_one_clear_line(packed_folder, tmp_path, edit, message):
    from ctrust_tui.engine.loader import load_model

    bad = _damage(packed_folder, tmp_path / "bad", edit)
    with pytest.raises(CtrustError, match=message):
        check_packed_folder(bad)
    with pytest.raises(CtrustError, match=message):
        load_model(bad, parse_spec("rtn-4b-g32-asym"), "cpu")
