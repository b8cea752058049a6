"""Teacher-forced next-token probabilities at the point where two outputs part (flip forensics).

Given a loaded model, the rendered prompt and the common prefix of two outputs, one forward
pass over prompt + prefix gives the model's distribution over the next token: its top-k and the
probability of each probed token (the two outputs' tokens at the divergence). Prompts are
tokenized exactly as the generator tokenizes them (`add_special_tokens=False`: the rendered text
already carries the template's BOS); outputs are re-tokenized from their stored text, because
the cache keeps text, not token ids (see docs/decisions.md, "Flip forensics").
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import torch

TOP_K = 5


@dataclass(frozen=True)
class TokenProb:
    id: int
    text: str  # the token decoded alone (special tokens kept): untrusted model text
    p: float


@dataclass(frozen=True)
class NextTokens:
    """One model's next-token distribution after a context: its top-k and the probed tokens' probabilities."""

    top: tuple[TokenProb, ...]
    probes: dict[int, float]


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` as the generator tokenizes prompts (no special tokens added)."""
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first token where `a` and `b` differ (the shorter one's length when it is a
    prefix of the other); None when they are identical."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def token_text(tokenizer: Any, token_id: int) -> str:
    return str(tokenizer.decode([int(token_id)], skip_special_tokens=False))


def _keeps_last_only(model: Any) -> dict[str, Any]:
    """`logits_to_keep=1` where the model takes it: the full logits of a 4k-token prompt over a
    49k vocabulary would be 800 MB of float32 for one needed row."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    if "logits_to_keep" in params:
        return {"logits_to_keep": 1}
    if "num_logits_to_keep" in params:
        return {"num_logits_to_keep": 1}
    return {}


def next_tokens(model: Any, tokenizer: Any, device: Any, context_ids: Sequence[int],
                probes: Sequence[int] = (), k: int = TOP_K) -> NextTokens:
    """One teacher-forced forward over `context_ids`; the softmax (float32) of the last position."""
    if not context_ids:
        raise ValueError("an empty context has no next token")
    ids = torch.tensor([list(context_ids)], dtype=torch.long, device=device)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=False, **_keeps_last_only(model))
        probs = out.logits[0, -1].float().softmax(-1)
        vals, idx = probs.topk(min(k, probs.shape[-1]))
    top = tuple(TokenProb(int(i), token_text(tokenizer, int(i)), float(v)) for v, i in zip(vals.tolist(), idx.tolist()))
    return NextTokens(top, {int(t): float(probs[int(t)]) for t in probes if 0 <= int(t) < probs.shape[-1]})


def top_k_at(model: Any, tokenizer: Any, device: Any, prompt: str, output: str, position: int,
             k: int = TOP_K) -> NextTokens:
    """The model's top-k for output token `position` given the prompt and the output's first
    `position` tokens (teacher forcing), probing the output's own token there if it has one."""
    out_ids = encode(tokenizer, output)
    probes = [out_ids[position]] if position < len(out_ids) else []
    return next_tokens(model, tokenizer, device, encode(tokenizer, prompt) + out_ids[:position], probes, k)


__all__ = ["TOP_K", "NextTokens", "TokenProb", "encode", "first_divergence", "next_tokens", "token_text", "top_k_at"]
