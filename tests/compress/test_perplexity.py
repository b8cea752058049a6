"""WikiText-2 perplexity on the fixed slice: matches a manual computation, deterministic."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ctrust_tui.compress.perplexity import (
    DEFAULT_SLICE,
    PerplexitySlice,
    eval_text,
    eval_token_ids,
    measure_perplexity,
    perplexity_of_ids,
)
from ctrust_tui.errors import Cancelled


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class ByteTok:
    """A byte-level toy tokenizer (ids 0..255), enough for the slice logic."""

    def __call__(self, text, add_special_tokens=False, return_tensors=None):
        return {"input_ids": list(text.encode("utf-8"))}


def tiny(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256)
    return LlamaForCausalLM(cfg).eval()


def manual_ppl(model, ids):
    nll, n = 0.0, 0
    with torch.no_grad():
        for row in ids:
            logits = model(row[None]).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            for t in range(len(row) - 1):
                nll -= float(logp[t, row[t + 1]])
                n += 1
    return math.exp(nll / n)


def test_matches_manual_computation_on_repeated_text():
    model = tiny()
    ids = torch.tensor(list(b"the cat sat on the mat. " * 8)[:96]).view(3, 32)
    got = perplexity_of_ids(model, ids, batch_size=2, device="cpu")
    assert math.isfinite(got) and got > 1
    assert got == pytest.approx(manual_ppl(model, ids), rel=1e-5)


def test_slice_is_deterministic_and_documented():
    text = eval_text()
    assert text.startswith(" \n = Robert Boulter = ")  # the raw test split, as is
    sl = PerplexitySlice(n_windows=3, seqlen=64)
    a = eval_token_ids(ByteTok(), sl, text)
    b = eval_token_ids(ByteTok(), sl)
    assert a.shape == (3, 64) and torch.equal(a, b)
    assert a.flatten().tolist() == list(text.encode())[: 3 * 64]
    d = DEFAULT_SLICE.to_dict()
    assert d["n_windows"] * d["seqlen"] == d["n_tokens"] == 8192 and "no BOS" in d["definition"]


def test_measure_perplexity_reports_slice_progress_and_cancel():
    model = tiny()
    sl = PerplexitySlice(n_windows=4, seqlen=32)
    events = []
    out = measure_perplexity(model, ByteTok(), sl, device="cpu", progress=events.append, label="x")
    assert math.isfinite(out["value"]) and out["slice"]["n_tokens"] == 128 and len(out["text_sha256_16"]) == 16
    assert [e.layer for e in events] == [2, 4] and all(e.step == "perplexity" for e in events)
    with pytest.raises(Cancelled):
        measure_perplexity(model, ByteTok(), sl, device="cpu", cancel=lambda: True)
    assert not model.training
