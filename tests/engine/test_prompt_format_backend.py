"""The engine renders `--prompt-format fork` prompts and post-processes outputs as the fork did."""

from __future__ import annotations

from pathlib import Path

import torch
from test_generate import model, tok  # noqa: F401  (module fixtures; tests/ dirs are rootdir-imported)

from ctrust_tui.backend import GenRequest
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.engine.backend import EngineBackend
from ctrust_tui.engine.loader import LoadedModel
from ctrust_tui.trust.types import Decoding, Message


def _backend(model, tok, fmt: str) -> EngineBackend:  # noqa: F811
    loaded = LoadedModel(model, tok, torch.device("cpu"), torch.float32, Path("."), parse_spec("none"), 0.0, 0)
    return EngineBackend(loaded, model_fingerprint="fp", compression="none", prompt_format=fmt)


def test_model_format_is_the_chat_template(model, tok):  # noqa: F811
    b = _backend(model, tok, "model")
    assert b.render([Message("user", "the cat")]) == "user : the cat assistant :"
    assert b.info["prompt_format"] == "model"


def test_fork_format_renders_the_named_template(model, tok):  # noqa: F811
    b = _backend(model, tok, "fork:vicuna_v1.1")
    msgs = [Message("system", "one two"), Message("user", "the cat")]
    assert b.render(msgs) == "one two USER: the cat ASSISTANT:"  # no BOS: this tokenizer adds none
    assert b.info["prompt_format"] == "fork:vicuna_v1.1"


def test_fork_fallback_cuts_outputs_like_the_fork(model, tok):  # noqa: F811
    b = _backend(model, tok, "fork")  # a non-LLaMA-2 chat template -> the base-model fallback
    assert b.info["prompt_format"] == "fork:redpajama-incite-instruct"
    req = GenRequest("k", b.render([Message("user", "the cat")]), Decoding(max_new_tokens=6), 0, 0)
    plain = _backend(model, tok, "model")
    raw = [r for batch in plain.generate([req]) for r in batch][0].text
    cut = [r for batch in b.generate([req]) for r in batch][0].text
    assert cut == raw[: raw.find("sentence")]
