"""compress_model end to end on a tiny random Llama with an in-test tokenizer (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from ctrust_tui.compress import api
from ctrust_tui.compress.api import CompressedModel, compress_model, list_compressed
from ctrust_tui.compress.cache import METADATA_FILE, variant_dir_name
from ctrust_tui.compress.spec import CompressionSpec, parse_spec
from ctrust_tui.compress.types import CalibrationConfig
from ctrust_tui.errors import Cancelled, CtrustError, InvalidSpec, ModelNotFound

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Valkyria Chronicles III is a tactical role-playing game.",
    "Compression can change what a language model says about people.",
    "Beginners BBQ class taking place in Missoula!",
] * 4

TINY_CAL = CalibrationConfig(source="c4", nsamples=4, seqlen=32, seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(SENTENCES, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def make_base(root: Path, seed: int = 0) -> Path:
    path = root / "tiny"
    torch.manual_seed(seed)
    tok = make_tokenizer()
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=1024)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    (path / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    return path


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return make_base(tmp_path_factory.mktemp("models"))


@pytest.fixture
def models_dir(tmp_path) -> Path:
    return tmp_path / "models"


def leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


def test_rtn_writes_a_complete_folder_then_reuses_it(base_dir, models_dir, monkeypatch):
    events = []
    spec = parse_spec("rtn-4b-g32")
    out = compress_model(base_dir, spec, base_name="tiny", models_dir=models_dir, device="cpu",
                         progress=events.append)
    assert isinstance(out, CompressedModel) and not out.reused
    assert out.path == models_dir / "tiny--rtn-4b-g32"
    assert leftovers(models_dir) == ["tiny--rtn-4b-g32"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", METADATA_FILE):
        assert (out.path / name).is_file(), name
    meta = json.loads((out.path / METADATA_FILE).read_text())
    assert meta["spec"] == "rtn-4b-g32" and meta["calibration"] is None
    assert meta["base"]["name"] == "tiny" and len(meta["base"]["fingerprint"]) == 64
    assert meta["effective_bits_per_weight"] == pytest.approx(4 + 16 / 32)
    assert meta["memory"]["bytes_in_memory"] > 0 and len(meta["sparsity"]["per_layer"]) == 2
    ppl = meta["perplexity"]
    assert 1 < ppl["before"] < 1e4 and 1 < ppl["after"] < 1e4 and ppl["slice"]["n_windows"] == 16
    assert {"load", "perplexity_before", "compress", "perplexity_after", "save", "total"} <= set(meta["timings_s"])
    assert meta["versions"]["torch"] == torch.__version__
    steps = [e.step for e in events]
    assert steps[0] == "load" and "perplexity" in steps and steps[-1] == "save"
    assert any(s.startswith("compress") for s in steps)

    # the folder loads as a normal HF model whose weights are on the 4-bit grid
    m = LlamaForCausalLM.from_pretrained(out.path, dtype=torch.float32)
    w = m.model.layers[0].mlp.up_proj.weight.detach().reshape(-1, 32)
    assert max(len(torch.unique(g)) for g in w) <= 16

    def boom(*a, **k):
        raise AssertionError("must not recompress")

    monkeypatch.setattr(api, "_dispatch", boom)
    again = compress_model(base_dir, spec, base_name="tiny", models_dir=models_dir, device="cpu")
    assert again.reused and again.path == out.path and again.metadata["created"] == meta["created"]
    assert list_compressed(models_dir)[0][0] == out.path


def test_awq_with_custom_calibration_gets_a_tagged_folder(base_dir, models_dir):
    spec = parse_spec("awq-3b-g32")
    out = compress_model(base_dir, spec, base_name="tiny", models_dir=models_dir, calibration=TINY_CAL,
                         device="cpu", measure_perplexity=False)
    assert out.path.name == f"tiny--awq-3b-g32--{TINY_CAL.tag}" == variant_dir_name("tiny", spec, TINY_CAL)
    meta = out.metadata
    assert meta["calibration"]["nsamples"] == 4 and meta["perplexity"] is None
    assert meta["method"]["stats"]["zero_point"] is True
    # another calibration is another variant; the same one is reused
    again = compress_model(base_dir, spec, base_name="tiny", models_dir=models_dir, calibration=TINY_CAL,
                           device="cpu", measure_perplexity=False)
    assert again.reused


def test_exception_after_partial_save_leaves_nothing(base_dir, models_dir, monkeypatch):
    def fail_after_weights(base, dest):
        assert (dest / "model.safetensors").is_file()  # weights were already written
        raise OSError("disk full")

    monkeypatch.setattr(api, "_copy_tokenizer_files", fail_after_weights)
    with pytest.raises(OSError):
        compress_model(base_dir, parse_spec("magnitude-0.5"), base_name="tiny", models_dir=models_dir,
                       device="cpu", measure_perplexity=False)
    assert leftovers(models_dir) == []


def test_cancel_mid_method_leaves_nothing(base_dir, models_dir):
    seen = {"n": 0}

    def cancel():
        seen["n"] += 1
        return seen["n"] > 4

    with pytest.raises(Cancelled):
        compress_model(base_dir, parse_spec("wanda-2:4"), base_name="tiny", models_dir=models_dir,
                       calibration=TINY_CAL, device="cpu", cancel=cancel, measure_perplexity=False)
    assert leftovers(models_dir) == []


def test_changed_base_is_recompressed(tmp_path, models_dir):
    base = make_base(tmp_path / "b1", seed=0)
    spec = parse_spec("magnitude-2:4")
    first = compress_model(base, spec, base_name="tiny", models_dir=models_dir, device="cpu",
                           measure_perplexity=False)
    assert first.path.name == "tiny--magnitude-2_4"
    assert first.metadata["sparsity"]["overall"] == pytest.approx(0.5)
    m = LlamaForCausalLM.from_pretrained(base)
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight.mul_(2)
    m.save_pretrained(base)
    second = compress_model(base, spec, base_name="tiny", models_dir=models_dir, device="cpu",
                            measure_perplexity=False)
    assert not second.reused
    assert second.metadata["base"]["fingerprint"] != first.metadata["base"]["fingerprint"]
    assert leftovers(models_dir) == ["tiny--magnitude-2_4"]


def test_none_and_bnb_write_nothing(base_dir, models_dir):
    dense = compress_model(base_dir, CompressionSpec(), base_name="tiny", models_dir=models_dir)
    assert dense.path == base_dir and dense.reused and not dense.load_time
    nf4 = compress_model(base_dir, parse_spec("bnb-nf4"), base_name="tiny", models_dir=models_dir)
    assert nf4.path == base_dir and nf4.load_time
    assert nf4.metadata["quantization_config"]["bnb_4bit_quant_type"] == "nf4"
    assert leftovers(models_dir) == []


def test_bad_input_names_choices_and_writes_nothing(base_dir, models_dir, tmp_path):
    with pytest.raises(ModelNotFound):
        compress_model(tmp_path / "nope", parse_spec("rtn-4b-g32"), base_name="nope", models_dir=models_dir)
    with pytest.raises(InvalidSpec, match="choose one of"):
        compress_model(base_dir, CompressionSpec(method="gptq", bits=5), base_name="tiny", models_dir=models_dir)
    with pytest.raises(InvalidSpec):
        compress_model(base_dir, "gptq-4b-g128", base_name="tiny", models_dir=models_dir)  # type: ignore[arg-type]
    with pytest.raises(CtrustError, match="nsamples"):
        compress_model(base_dir, parse_spec("gptq-4b-g32"), base_name="tiny", models_dir=models_dir,
                       calibration=CalibrationConfig(nsamples=0))
    with pytest.raises(CtrustError, match="device"):
        compress_model(base_dir, parse_spec("rtn-4b-g32"), base_name="tiny", models_dir=models_dir,
                       device="tpu")
    with pytest.raises(CtrustError):
        compress_model(base_dir, parse_spec("rtn-4b-g32"), base_name="../x", models_dir=models_dir)
    assert leftovers(models_dir) == []
