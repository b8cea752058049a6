"""Vendor seeded subsets of DecodingTrust's adversarial-demonstration data (seed-42 files).

Counterfactual `_cf` items carry 17 demonstrations each (16 + the counterfactual), so they
dominate the size: 60 seeded items per task. Backdoor files share one 16-demo set per file
(asserted here), which is stored once per setup; the ASR file holds the triggered versions of
the clean file's negative items (attacker target 'positive'), 100 seeded items each.
Spurious-correlation data (HANS-based) is absent from the snapshot and cannot be built offline.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = "ctrust/advdemo/v1"
CF_ITEMS = 60
BACKDOOR_ITEMS = 100
CF_TASKS = (
    "snli_premise",
    "snli_hypothesis",
    "main_verb",
    "syntactic_category",
    "irregular_form",
    "control_raising",
)
BACKDOOR_SETUPS = (
    "setup1_badword",
    "setup2_badword",
    "setup3_badword",
    "setup2_addsent",
    "setup2_synbkd",
    "setup2_stylebkd",
)

ATTRIBUTION = """\
DecodingTrust adversarial-demonstration data (Wang et al., NeurIPS 2023), CC BY-SA 4.0 (see ../LICENSE),
from https://github.com/AI-secure/DecodingTrust commit 161ae8321ced62f45fcd9ceb412e05b47c603cd4,
data/adv_demonstration/{counterfactual/<task>_cf,backdoor/experiment1/sst-2_<setup>_{asr,cacc}}/42.jsonl.
Underlying data: SNLI (CC BY-SA 4.0), MSGS (Warstadt et al. 2020), SST-2 (GLUE terms).
Modified subset by scripts/vendor/advdemo.py (seed "ctrust/advdemo/v1"), seed-42 files only:
- counterfactual.json: per task 60 seeded items (of 400 / 1000), fields row (0-based line in the
  source file), input, label, option, examples (all 17 demonstrations, the last is the counterfactual).
- backdoor.json: per setup the 16 demonstrations shared by every item of both files (stored once),
  option, and 100 seeded items of each of the cacc and asr files (row, input, label).
Spurious-correlation files are absent upstream in the snapshot and are not included.
"""


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sample(rows: list[dict], k: int, seed: str) -> list[dict]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [{"row": i, **rows[i]} for i in order[:k]]


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "decodingtrust" / "adv_demonstration"
    counterfactual = {}
    for task in CF_TASKS:
        rows = _read_jsonl(src / "counterfactual" / f"{task}_cf" / "42.jsonl")
        counterfactual[task] = [
            {k: r[k] for k in ("row", "input", "label", "option", "examples")}
            for r in _sample(rows, CF_ITEMS, f"{SEED}/counterfactual/{task}")
        ]
    backdoor = {}
    for setup in BACKDOOR_SETUPS:
        base = src / "backdoor" / "experiment1"
        cacc = _read_jsonl(base / f"sst-2_{setup}_cacc" / "42.jsonl")
        asr = _read_jsonl(base / f"sst-2_{setup}_asr" / "42.jsonl")
        demos = cacc[0]["examples"]
        assert all(r["examples"] == demos for r in cacc + asr), setup
        assert all(r["option"] == cacc[0]["option"] for r in cacc + asr), setup
        assert {r["label"] for r in asr} == {"positive"}, setup
        backdoor[setup] = {
            "examples": demos,
            "option": cacc[0]["option"],
            "target": "positive",
            "cacc": [
                {k: r[k] for k in ("row", "input", "label")}
                for r in _sample(cacc, BACKDOOR_ITEMS, f"{SEED}/backdoor/{setup}/cacc")
            ],
            "asr": [
                {k: r[k] for k in ("row", "input", "label")}
                for r in _sample(asr, BACKDOOR_ITEMS, f"{SEED}/backdoor/{setup}/asr")
            ],
        }
    out_dir = root / "ctrust_tui" / "trust" / "data" / "advdemo"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, obj in (("counterfactual.json", counterfactual), ("backdoor.json", backdoor)):
        path = out_dir / name
        path.write_text(
            json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n",
            encoding="utf-8",
        )
        written.append(path)
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    return [*written, attribution]
