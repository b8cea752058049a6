"""Vendor seeded subsets of DecodingTrust's OOD data (style-transformed SST-2, RealtimeQA).

Style: the same seeded 200 SST-2 dev sentence ids in every style (so styles differ only by the
transformation), plus the three 8-shot `base_*` demo sets the fork's scored few-shot runs use.
Knowledge: all 263 qa_2023 questions, a seeded 200 of the 855 qa_2020 questions, and the four
MMLU demo sets x 3 runs the fork scores; URL/evidence fields are dropped (never prompted).
Lists are stored in seeded order so a profile's first k items are a uniform sample.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = "ctrust/ood/v1"
STYLE_IDS = 200
QA_2020 = 200
STYLES = (
    "shake_w",
    "augment",
    "shake_p0",
    "shake_p0.6",
    "bible_p0",
    "bible_p0.6",
    "romantic_p0",
    "romantic_p0.6",
    "tweet_p0",
    "tweet_p0.6",
)
STYLE_DEMOS = ("base_0", "base_1", "base_2")
KNOWLEDGE_DEMOS = tuple(
    f"{d}_{r}"
    for d in ("global_facts", "machine_learning", "moral_scenarios", "us_foreign_policy")
    for r in range(3)
)
QUESTION_KEYS = ("question_id", "question_date", "question_sentence", "choices", "answer")

ATTRIBUTION = """\
DecodingTrust OOD data (Wang et al., NeurIPS 2023), CC BY-SA 4.0 (see ../LICENSE), from
https://github.com/AI-secure/DecodingTrust commit 161ae8321ced62f45fcd9ceb412e05b47c603cd4,
data/ood/style.json (style-transformed SST-2 dev; SST-2/GLUE terms apply) and data/ood/knowledge.json
(RealTimeQA questions, see RealTimeQA's terms; MMLU demos, MIT).
Modified subset by scripts/vendor/ood.py (seed "ctrust/ood/v1"):
- style.json: dev = 10 OOD styles x the same 200 seeded sentence ids (of 872), seeded order;
  train_demo = base_0, base_1, base_2 (8 demos each, unchanged).
- knowledge.json: test.qa_2023 = all 263 questions, test.qa_2020 = 200 seeded of 855, both in seeded
  order; demo = {global_facts,machine_learning,moral_scenarios,us_foreign_policy}_{0,1,2} (unchanged);
  only the fields question_id, question_date, question_sentence, choices, answer are kept.
"""


def _dump(obj: object, path: Path) -> Path:
    path.write_text(
        json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    return path


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "decodingtrust" / "ood"
    style = json.loads((src / "style.json").read_text(encoding="utf-8"))
    knowledge = json.loads((src / "knowledge.json").read_text(encoding="utf-8"))

    n_dev = len(style["dev"]["base"])
    positions = list(range(n_dev))
    random.Random(f"{SEED}/style-ids").shuffle(positions)
    positions = positions[:STYLE_IDS]
    dev = {}
    for name in STYLES:
        items = style["dev"][name]
        assert len(items) == n_dev and all(items[i]["id"] == style["dev"]["base"][i]["id"] for i in positions)
        dev[name] = [
            {"id": items[i]["id"], "label": int(items[i]["label"]), "sentence": items[i]["sentence"]}
            for i in positions
        ]
    demos = {
        k: [{"label": int(x["label"]), "sentence": x["sentence"]} for x in style["train_demo"][k]]
        for k in STYLE_DEMOS
    }

    def slim(q: dict) -> dict:
        return {k: q[k] for k in QUESTION_KEYS if k in q}

    qa_2023 = [slim(q) for q in knowledge["test"]["qa_2023"]]
    random.Random(f"{SEED}/qa_2023").shuffle(qa_2023)
    qa_2020 = [slim(q) for q in knowledge["test"]["qa_2020"]]
    random.Random(f"{SEED}/qa_2020").shuffle(qa_2020)
    kdemo = {k: [slim(q) for q in knowledge["demo"][k]] for k in KNOWLEDGE_DEMOS}

    out_dir = root / "ctrust_tui" / "trust" / "data" / "ood"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        _dump({"dev": dev, "train_demo": demos}, out_dir / "style.json"),
        _dump(
            {"test": {"qa_2023": qa_2023, "qa_2020": qa_2020[:QA_2020]}, "demo": kdemo},
            out_dir / "knowledge.json",
        ),
    ]
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    return [*written, attribution]
