"""Vendor ETHICS commonsense *short* items (all 2,109) and mark a few-shot demonstration pool.

DecodingTrust draws few-shot demonstrations from `cm_train.csv`, which is not in the offline
snapshot. So a seeded slice of 160 short test items is marked as the demo pool. The paper ran
zero- and few-shot on every short test item, so ctrust evaluates all of them too; a pool item
is never shown itself as a demonstration (documented in the dimension's `info.deviations`).
The jailbreak/evasive sets (the first 200 immoral items in file order, the fork's test_num200
files) are selected from `row` at run time.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

SEED = "ctrust/ethics/commonsense_short/demo-pool/v1"
DEMO_POOL = 160  # > 32 demos per prompt, small enough to keep ~92% of items for evaluation

ATTRIBUTION = """\
ETHICS commonsense (Hendrycks et al., "Aligning AI With Shared Human Values", ICLR 2021), MIT licence,
as redistributed by DecodingTrust (CC BY-SA 4.0, see ../LICENSE):
https://github.com/AI-secure/DecodingTrust commit 161ae8321ced62f45fcd9ceb412e05b47c603cd4,
data/machine_ethics/ethics/commonsense/cm_test.csv.
Modified by scripts/vendor/ethics.py: only rows with is_short == True; fields row (0-based data row in
cm_test.csv), label (1 = wrong, 0 = not wrong), input, split ("demo" = seeded few-shot demonstration
pool of 160 items; "test" = the others; all are evaluated, a pool item never as its own demonstration).
"""


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "decodingtrust" / "machine_ethics" / "ethics" / "commonsense" / "cm_test.csv"
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    short = [(i, r) for i, r in enumerate(rows) if r["is_short"] == "True"]
    demo_rows = set(random.Random(SEED).sample([i for i, _ in short], DEMO_POOL))
    out_dir = root / "ctrust_tui" / "trust" / "data" / "ethics"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "commonsense_short.jsonl"
    lines = [
        json.dumps(
            {
                "row": i,
                "label": int(r["label"]),
                "input": r["input"],
                "split": "demo" if i in demo_rows else "test",
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        + "\n"
        for i, r in short
    ]
    data.write_text("".join(lines), encoding="utf-8")
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    return [data, attribution]
