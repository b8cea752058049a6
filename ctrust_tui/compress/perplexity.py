"""WikiText-2 perplexity on a fixed, quick, deterministic slice.

The slice (`PerplexitySlice`, recorded in every compression.json):
- text: WikiText-2 raw *test* split (`calibration.load_eval_text("wikitext2")`, falling back to
  the vendored `data/wikitext2_test.txt` read as-is), tokenized once without special tokens;
- windows: the first `n_windows` x `seqlen` tokens (default 16 x 512 = 8,192 tokens), cut into
  consecutive, non-overlapping windows of `seqlen`, each evaluated independently (no BOS
  added, no context carried over: the GPTQ/SparseGPT convention);
- value: exp(mean next-token NLL over every predicted position), i.e. n_windows x (seqlen - 1)
  predictions, computed in float32.
16 x 512 takes about 20 s for a 135M model on 2 CPU cores. Numbers are comparable only for the
same slice (and tokenizer); they are lower-context than the papers' 2048-token windows, so read
them as *relative* before/after figures, not as the paper's absolute perplexities.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import Cancelled
from .types import CancelFn, CompressProgress, ProgressFn

_DATA = Path(__file__).with_name("data")


@dataclass(frozen=True)
class PerplexitySlice:
    dataset: str = "wikitext2"
    split: str = "test"
    n_windows: int = 16
    seqlen: int = 512

    @property
    def n_tokens(self) -> int:
        return self.n_windows * self.seqlen

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n_tokens"] = self.n_tokens
        d["predicted_tokens"] = self.n_windows * (self.seqlen - 1)
        d["definition"] = (
            f"first {self.n_windows} x {self.seqlen} tokens of {self.dataset} {self.split}, "
            "non-overlapping windows, no BOS, exp(mean NLL)"
        )
        return d


DEFAULT_SLICE = PerplexitySlice()


def eval_text(dataset: str = "wikitext2") -> str:
    """The evaluation text (the calibration module's loader when present, else the vendored file)."""
    try:
        from .calibration import load_eval_text  # the calibration engineer's loader
    except ImportError:
        load_eval_text = None
    if load_eval_text is not None:
        return load_eval_text(dataset)
    if dataset != "wikitext2":
        raise ValueError(f"unknown perplexity dataset {dataset!r}; only 'wikitext2'")
    return (_DATA / "wikitext2_test.txt").read_text(encoding="utf-8")


def eval_token_ids(tokenizer, slice_: PerplexitySlice = DEFAULT_SLICE, text: str | None = None):
    """LongTensor [n_windows, seqlen] of the slice's tokens (tokenizes only a prefix of the text)."""
    import torch

    if text is None:
        text = eval_text(slice_.dataset)
    need = slice_.n_tokens
    chars = max(4096, need * 6)
    while True:
        prefix = text[:chars]
        ids = tokenizer(prefix, add_special_tokens=False, return_tensors=None)["input_ids"]
        # the last few tokens of a prefix may differ from the full tokenization: keep a margin
        if len(ids) >= need + 16 or chars >= len(text):
            break
        chars *= 2
    if len(ids) < need:
        raise ValueError(f"{slice_.dataset} has only {len(ids)} tokens; the slice needs {need}")
    return torch.tensor(ids[:need], dtype=torch.long).view(slice_.n_windows, slice_.seqlen)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def perplexity_of_ids(
    model,
    ids,
    *,
    batch_size: int = 2,
    device: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    label: str = "",
) -> float:
    """exp(mean next-token NLL) over all windows of `ids` [n, seqlen], each window on its own."""
    import torch
    import torch.nn.functional as F

    if device is None:
        device = str(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    total_nll = 0.0
    total_n = 0
    n = ids.shape[0]
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                if cancel is not None and cancel():
                    raise Cancelled()
                batch = ids[start : start + batch_size].to(device)
                logits = model(input_ids=batch, use_cache=False).logits
                shift = logits[:, :-1, :].float()
                target = batch[:, 1:]
                nll = F.cross_entropy(shift.reshape(-1, shift.shape[-1]), target.reshape(-1), reduction="sum")
                total_nll += float(nll)
                total_n += target.numel()
                del logits, shift
                if progress is not None:
                    done = min(n, start + batch_size)
                    progress(CompressProgress(label, done, n, "perplexity", f"window {done}/{n}"))
    finally:
        model.train(was_training)
    return math.exp(total_nll / total_n)


def measure_perplexity(
    model,
    tokenizer,
    slice_: PerplexitySlice = DEFAULT_SLICE,
    *,
    device: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Perplexity of `model` on the slice; returns {"value", "slice", "text_sha256_16"}."""
    text = eval_text(slice_.dataset)
    ids = eval_token_ids(tokenizer, slice_, text)
    value = perplexity_of_ids(model, ids, device=device, progress=progress, cancel=cancel, label=label)
    return {"value": value, "slice": slice_.to_dict(), "text_sha256_16": text_digest(text)}
