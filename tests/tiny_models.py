"""Tiny random Llama folders built in-test (seeded, no downloads) for model-folder safety tests."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = "the cat sat on the mat a dog ran in the park yes no wrong not agree disagree".split()


def save_tiny_llama(path: Path, *, safetensors: bool = True) -> Path:
    """A 2-layer, 64-wide random Llama with a word-level tokenizer, saved like any HF folder (~0.3 MB)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.train_from_iterator([" ".join(WORDS)], trainers.WordLevelTrainer(special_tokens=["<pad>", "<eos>", "<unk>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=t, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=256)
    path.mkdir(parents=True, exist_ok=True)
    model = LlamaForCausalLM(cfg)
    if safetensors:
        model.save_pretrained(path)
    else:  # a pickle checkpoint, as old hub repos ship them
        model.config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    tok.save_pretrained(path)
    return path


def add_remote_code(path: Path, marker: Path, *, model_type: str = "evil_llama") -> Path:
    """Make `path` ask for custom code: `auto_map` -> a local module that writes `marker` on import."""
    code = f"from pathlib import Path\nPath({str(marker)!r}).write_text('remote code ran')\n"
    (path / "evil.py").write_text(code + "from transformers import LlamaConfig as EvilConfig, "
                                  "LlamaForCausalLM as EvilForCausalLM\n")
    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = model_type
    cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilForCausalLM"}
    (path / "config.json").write_text(json.dumps(cfg))
    return path
