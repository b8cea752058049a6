"""Vendor the original AdvGLUE dev set (the offline substitute for AdvGLUE++).

AdvGLUE++ (the paper's data) is not in the offline snapshot; the original AdvGLUE dev set has
the same tasks and item fields and is small (738 items), so all of it is kept. Each task's
items are stored in a seeded random order so that a profile's first k items are a uniform
sample and smaller profiles are prefixes of larger ones (stable prompt ids).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = "ctrust/advglue/dev-order/v1"
TASKS = ("sst2", "qqp", "mnli", "mnli-mm", "qnli", "rte")

ATTRIBUTION = """\
AdvGLUE dev set (Wang et al., "Adversarial GLUE", NeurIPS 2021 Datasets & Benchmarks), CC BY-SA 4.0,
from https://github.com/AI-secure/adversarial-glue commit 2e18301c3e6b0fed775834d64e9e431745df92ed
(file dev.json), as shipped with the DecodingTrust offline data (see ../LICENSE, CC BY-SA 4.0).
Underlying GLUE tasks (SST-2, QQP, MNLI, QNLI, RTE) keep their own terms.

THIS IS NOT AdvGLUE++ (the data used by DecodingTrust and "Decoding Compressed Trust"), which is
absent from the offline snapshot. Scores on this file are not comparable with the paper's AdvGLUE++.

Modified by scripts/vendor/advglue.py: every item kept, unchanged fields (idx, label, task text
keys); each task's list is re-ordered with random.Random("ctrust/advglue/dev-order/v1").
"""


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "decodingtrust" / "advglue" / "dev.json"
    dev = json.loads(src.read_text(encoding="utf-8"))
    out: dict[str, list[dict]] = {}
    for task in TASKS:
        items = list(dev[task])
        random.Random(f"{SEED}/{task}").shuffle(items)
        out[task] = items
    out_dir = root / "ctrust_tui" / "trust" / "data" / "advglue"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "dev.json"
    data.write_text(
        json.dumps(out, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    return [data, attribution]
