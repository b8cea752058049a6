"""Calibration windows and perplexity text (vendored WikiText-2 / C4, or a user file).

Public API (used by compress/api.py and the CLI):

    load_calibration_ids(tokenizer, cfg: CalibrationConfig) -> torch.LongTensor  # [nsamples, seqlen]
    load_eval_text(name: str = "wikitext2") -> str                              # perplexity text
    read_source_text(source: str) -> str | list[str]                            # raw text / C4 docs

`tokenizer` is anything callable as `tokenizer(text)` returning a mapping with "input_ids"
(a list of ints, or a [1, T] tensor) -- an HF tokenizer, or a toy one in tests.

Sampling follows the reference code (IST-DASLab/gptq `datautils.py`, also used by SparseGPT and
Wanda), with Python's `random.seed(seed)`:

- `c4`: draw a random document until one is longer than `seqlen` tokens, then a random window of
  `seqlen` tokens inside it; repeat `nsamples` times. (Here from the first 883 documents of the
  same C4 train shard, not all 356k.)
- `wikitext2` and user files: tokenize the whole text once and take `nsamples` random windows.
  WikiText-2 text is the *validation* split (the train split is not vendored); a user `.jsonl`
  is its "text" fields joined with "\\n\\n" (like GPTQ joins WikiText rows); `.txt` is read as is.

Raises `CtrustError` for a missing/empty/unsupported file or too little text, suggesting smaller
`nsamples` / `seqlen`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..errors import CtrustError
from .types import CalibrationConfig

DATA_DIR = Path(__file__).resolve().parent / "data"
_FILES = {
    "c4": DATA_DIR / "c4_calib.jsonl",
    "wikitext2": DATA_DIR / "wikitext2_calib.txt",
}
_EVAL_FILES = {"wikitext2": DATA_DIR / "wikitext2_test.txt"}


def _read_jsonl(path: Path) -> list[str]:
    docs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise CtrustError(f"calibration file {path}: line {lineno} is not JSON ({e.msg})") from None
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise CtrustError(f"calibration file {path}: line {lineno} has no string field 'text'")
            docs.append(text)
    return docs


def read_source_text(source: str) -> str | list[str]:
    """The raw calibration text: a list of documents for `c4`, one string otherwise."""
    if source == "c4":
        return _read_jsonl(_FILES["c4"])
    if source == "wikitext2":
        return _FILES["wikitext2"].read_text(encoding="utf-8")
    path = Path(source).expanduser()
    if not path.is_file():
        raise CtrustError(
            f"calibration source {source!r} is neither 'c4', 'wikitext2' nor an existing .txt/.jsonl file"
        )
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        text = "\n\n".join(_read_jsonl(path))
    elif suffix == ".txt":
        text = path.read_text(encoding="utf-8", errors="replace")
    else:
        raise CtrustError(f"calibration file {path}: use a .txt file or a .jsonl file with a 'text' field")
    if not text.strip():
        raise CtrustError(f"calibration file {path} contains no text")
    return text


def _ids(tokenizer, text: str) -> list[int]:
    out = tokenizer(text)
    ids = out["input_ids"] if not isinstance(out, list) else out
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):  # batched [[...]]
        ids = ids[0]
    return list(ids)


def _too_little(cfg: CalibrationConfig, have: str) -> CtrustError:
    return CtrustError(
        f"calibration source {cfg.source!r} has too little text for {cfg.nsamples} x {cfg.seqlen} tokens "
        f"({have}); use fewer samples (--nsamples) or shorter windows (--seqlen), or a larger file"
    )


def load_calibration_ids(tokenizer, cfg: CalibrationConfig):
    """`cfg.nsamples` random windows of `cfg.seqlen` token ids, seeded; LongTensor [nsamples, seqlen]."""
    import torch

    if cfg.nsamples < 1 or cfg.seqlen < 2:
        raise CtrustError(f"calibration needs nsamples >= 1 and seqlen >= 2 (got {cfg.nsamples} x {cfg.seqlen})")
    text = read_source_text(cfg.source)
    rng = random.Random(cfg.seed)
    windows: list[list[int]] = []
    if isinstance(text, list):  # C4: per-document windows, as GPTQ's get_c4
        docs = text
        cache: dict[int, list[int]] = {}
        longest = 0
        for _ in range(cfg.nsamples):
            while True:
                i = rng.randint(0, len(docs) - 1)
                if i not in cache:
                    cache[i] = _ids(tokenizer, docs[i])
                    longest = max(longest, len(cache[i]))
                enc = cache[i]
                if len(enc) > cfg.seqlen:
                    break
                if len(cache) == len(docs) and longest <= cfg.seqlen:
                    raise _too_little(cfg, f"its longest document has {longest} tokens")
            j = rng.randint(0, len(enc) - cfg.seqlen - 1)
            windows.append(enc[j : j + cfg.seqlen])
    else:  # one long text, as GPTQ's get_wikitext2
        enc = _ids(tokenizer, text)
        if len(enc) < cfg.nsamples * cfg.seqlen or len(enc) <= cfg.seqlen:
            raise _too_little(cfg, f"{len(enc)} tokens in all")
        for _ in range(cfg.nsamples):
            j = rng.randint(0, len(enc) - cfg.seqlen - 1)
            windows.append(enc[j : j + cfg.seqlen])
    return torch.tensor(windows, dtype=torch.long)


def load_eval_text(name: str = "wikitext2") -> str:
    """The perplexity text: WikiText-2 raw *test* split, the file as it is (llama.cpp style).

    GPTQ's own evaluation joins the HF rows with "\\n\\n"; the raw file keeps one "\\n" per row,
    so numbers differ slightly from papers' tables (the ranking of methods does not).
    """
    path = _EVAL_FILES.get(name)
    if path is None:
        raise CtrustError(f"unknown evaluation text {name!r}; choose one of {', '.join(_EVAL_FILES)}")
    return path.read_text(encoding="utf-8")
