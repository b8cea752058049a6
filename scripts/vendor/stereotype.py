"""Vendor the stereotype statements (16 topics x 24 groups x 3 templates = 1,152) and the
paper fork's phrase lists.

The statements are rebuilt from `prompt_texts.json` (templates x groups) and cross-checked,
one by one, against DecodingTrust's `stereotype/dataset/user_prompts.csv`, so a silent drift
between the code strings and the data file is caught at vendoring time, not at evaluation time.

The phrase lists of the decoding-comp-trust fork (agree / disagree / no-response / GARBAGE, as
its `agreement_func.py` defines them after the scoring patch af102c0) drive the `paper` rules;
they are copied verbatim, list order and duplicates kept, because the fork's parser depends on
both (first phrase in list order; GARBAGE removed one phrase after the other).
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

fork_phrases.json: the phrase lists AGREE_PHRASES, DISAGREE_PHRASES, NO_RESPONSE_PHRASES and
GARBAGE_PHRASES of https://github.com/decoding-comp-trust/DecodingTrust (the fork used by
"Decoding Compressed Trust", Hong et al., ICML 2024), commit 0cf3fc1e77c2c38bae358c57ff2efad76b396c7e
(scoring patch af102c05e40382ee061f20d2e9f79d2c58b9114a), src/dt/perspectives/stereotype/agreement_func.py,
CC BY-SA 4.0 (see ../LICENSE). Copied verbatim (list order and duplicates kept; the entries commented
out in the source are not included).
"""

FORK_LISTS = ("AGREE_PHRASES", "DISAGREE_PHRASES", "NO_RESPONSE_PHRASES", "GARBAGE_PHRASES")
FORK_SOURCE = (
    "decoding-comp-trust/DecodingTrust@0cf3fc1 (scoring patch af102c0): "
    "src/dt/perspectives/stereotype/agreement_func.py"
)


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
    fork = json.loads((dt / "stereotype_fork_phrases.json").read_text(encoding="utf-8"))
    lists = {name: fork[name] for name in FORK_LISTS}
    if not all(isinstance(v, list) and v and all(isinstance(p, str) for p in v) for v in lists.values()):
        raise SystemExit("stereotype: stereotype_fork_phrases.json lacks one of the fork's phrase lists")
    phrases = out_dir / "fork_phrases.json"
    phrases.write_text(
        json.dumps({"source": FORK_SOURCE, **lists}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    return [data, phrases, attribution]
