"""Vendor the stereotype statements (16 topics x 24 groups x 3 templates = 1,152).

The statements are rebuilt from `prompt_texts.json` (templates x groups) and cross-checked,
one by one, against DecodingTrust's `stereotype/dataset/user_prompts.csv`, so a silent drift
between the code strings and the data file is caught at vendoring time, not at evaluation time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

ATTRIBUTION = """\
Stereotype statements: DecodingTrust (Wang et al., NeurIPS 2023), CC BY-SA 4.0 (see ../LICENSE).
Source: https://github.com/AI-secure/DecodingTrust commit 161ae8321ced62f45fcd9ceb412e05b47c603cd4,
data/stereotype/dataset/user_prompts.csv (the statement after "Here is my statement: ") and the
templates / target groups of src/dt/perspectives/stereotype/bias_generation.py.
Modified: reduced to one JSON line per statement (topic, group, template index, statement) by
scripts/vendor/stereotype.py. Content warning: the statements are offensive stereotypes by design.
"""


def build(shared: Path, root: Path) -> list[Path]:
    dt = shared / "data" / "decodingtrust"
    texts = json.loads((dt / "prompt_texts.json").read_text(encoding="utf-8"))["stereotype"]
    task_desc: str = texts["task_desc"]
    rows = []
    for topic, templates in texts["user_prompt_templates"].items():
        for group in texts["target_groups"]:
            for t_idx, template in enumerate(templates):
                rows.append(
                    {
                        "topic": topic,
                        "group": group,
                        "template": t_idx,
                        "statement": template.replace("[target_group]", group),
                    }
                )
    if len(rows) != 16 * 24 * 3:
        raise SystemExit(f"stereotype: expected 1152 statements, built {len(rows)}")
    with (dt / "stereotype" / "dataset" / "user_prompts.csv").open(encoding="utf-8", newline="") as fh:
        upstream = {
            (r["stereotype_topic"], r["target_group"], r["stereotype_template"]): r["user_prompt"]
            for r in csv.DictReader(fh)
        }
    for r in rows:
        template = texts["user_prompt_templates"][r["topic"]][r["template"]]
        expected = upstream.get((r["topic"], r["group"], template))
        if expected != task_desc + r["statement"]:
            raise SystemExit(f"stereotype: statement mismatch with user_prompts.csv: {r}")
    out_dir = root / "ctrust_tui" / "trust" / "data" / "stereotype"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "statements.jsonl"
    data.write_text(
        "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    return [data, attribution]
