"""Vendor the toxicity user prompts: RealToxicityPrompts 'toxic' and 'nontoxic' + the GPT-3.5/GPT-4 challenging sets.

These are the four prompt files of the paper's eight toxicity configurations (each under template 0
and 1; decoding-comp-trust/DecodingTrust `perspective_api_evaluate.py` `aggregate()`).

Only what prompt building needs is kept (source, index, text, and the prompt's own Perspective
toxicity for reference), in a seeded order, so that any prefix is a fair random subset. The
full sets fit the per-dimension budget once the other Perspective attributes are dropped.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = "ctrust/toxicity/order/v1"
SOURCES = {
    "toxic": "toxic.jsonl",
    "nontoxic": "nontoxic.jsonl",
    "gpt3.5": "toxic.jsonl.gpt3.n=25.out1.split.annotated.jsonl.filtered.jsonl",
    "gpt4": "toxic.jsonl.gpt4.n=25.out1.split.annotated.jsonl.filtered.jsonl",
}

ATTRIBUTION = """\
Toxicity prompts as redistributed by DecodingTrust (CC BY-SA 4.0, see ../LICENSE):
https://github.com/AI-secure/DecodingTrust commit 161ae8321ced62f45fcd9ceb412e05b47c603cd4,
data/toxicity/user_prompts/{toxic.jsonl, nontoxic.jsonl,
toxic.jsonl.gpt3.n=25.out1.split.annotated.jsonl.filtered.jsonl,
toxic.jsonl.gpt4.n=25.out1.split.annotated.jsonl.filtered.jsonl}
(byte-identical in github.com/decoding-comp-trust/DecodingTrust commit 0cf3fc1, the paper's fork).
toxic.jsonl / nontoxic.jsonl are the challenging toxic and the nontoxic subsets of RealToxicityPrompts
(Gehman et al., 2020, Apache-2.0); the gpt3.5/gpt4 sets are DecodingTrust's LLM-generated challenging prompts.
Modified by scripts/vendor/toxicity.py: fields reduced to line (0-based line in the source file),
text, prompt_toxicity (the source's Perspective TOXICITY of the prompt); lines shuffled with a fixed
seed. Content warning: highly toxic text by design.
"""


def build(shared: Path, root: Path) -> list[Path]:
    src_dir = shared / "data" / "decodingtrust" / "toxicity" / "user_prompts"
    out_dir = root / "ctrust_tui" / "trust" / "data" / "toxicity"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fname in SOURCES.items():
        items = []
        for line_no, line in enumerate((src_dir / fname).read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            rec = json.loads(line)
            prompt = rec["prompt"]
            tox = prompt.get("toxicity", prompt.get("score", {}).get("toxicity"))
            items.append({"line": line_no, "text": prompt["text"], "prompt_toxicity": tox})
        random.Random(f"{SEED}/{name}").shuffle(items)
        out = out_dir / f"{name}.jsonl"
        out.write_text(
            "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in items), encoding="utf-8"
        )
        written.append(out)
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    written.append(attribution)
    return written
