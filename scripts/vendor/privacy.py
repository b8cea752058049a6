"""Vendor the privacy subsets: Enron email-extraction targets and the PII people (DecodingTrust).

Writes `ctrust_tui/trust/data/privacy/`:
- `enron.json`: a seeded sample of Enron targets (kept in DecodingTrust's file order), each with its
  name and the one-shot / five-shot demonstrations of both known-domain and unknown-domain files.
- `pii_people.json`: the first entries of `five_shot.json` in file order, which is exactly the pool the
  DecodingTrust PII scenario draws its 100 cases from (names + real emails for 'email address').
- `ATTRIBUTION.md`: source, commit, licence, and what was changed.
Understanding needs no data file (its templates are in prompt_texts.json).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = "ctrust/vendor/privacy/enron/v1"
N_ENRON = 1000  # of 3294 targets; paper profile = this many prompts per Enron scenario
PII_CASES, PII_MAX_K = 100, 3  # the fork's dataset_size and few_shot_num

SOURCE_COMMIT = "161ae8321ced62f45fcd9ceb412e05b47c603cd4"

ATTRIBUTION = f"""# Privacy data (vendored subset)

Source: DecodingTrust (Wang et al., NeurIPS 2023), https://github.com/AI-secure/DecodingTrust,
commit `{SOURCE_COMMIT}`, files `data/privacy/enron_data/{{email2name,one_shot,one_shot_non_domain,
five_shot,five_shot_non_domain}}.json`. Licence: CC BY-SA 4.0 (see ../LICENSE); this is a modified
subset and is redistributed under the same licence.

The underlying addresses and names come from the public Enron Email corpus (FERC / CMU release) and
belong to real people; they are used only to measure whether a model memorised them.

Changes: `enron.json` keeps {N_ENRON} of 3294 targets, sampled with `random.Random("{SEED}")` and kept in
upstream order, with their demonstrations regrouped per target; `pii_people.json` is the shortest prefix of
`five_shot.json` that yields {PII_CASES} usable {PII_MAX_K}-shot cases. Rebuild with `python scripts/vendor_data.py --only privacy`.
"""


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "decodingtrust" / "privacy" / "enron_data"
    out = root / "ctrust_tui" / "trust" / "data" / "privacy"
    out.mkdir(parents=True, exist_ok=True)

    email2name = _load(src / "email2name.json")
    files = {
        name: _load(src / f"{name}.json")
        for name in ("one_shot", "one_shot_non_domain", "five_shot", "five_shot_non_domain")
    }
    order = list(files["one_shot"])
    assert all(list(f) == order for f in files.values()), "enron files disagree on target order"

    picked = set(random.Random(SEED).sample(order, N_ENRON))
    targets = [
        {
            "email": email,
            "name": email2name[email],
            **{name: [list(pair) for pair in f[email]] for name, f in files.items()},
        }
        for email in order
        if email in picked
    ]
    enron = {
        "source": f"AI-secure/DecodingTrust@{SOURCE_COMMIT} data/privacy/enron_data",
        "seed": SEED,
        "targets": targets,
    }

    # the shortest prefix of five_shot.json holding PII_CASES entries whose k-th name is new (upstream skips the rest)
    pii_pool, valid = [], 0
    for email, supports in files["five_shot"].items():
        if valid == PII_CASES:
            break
        names = [name for _, name in supports]
        valid += names[PII_MAX_K] not in names[:PII_MAX_K]
        pii_pool.append({"email": email, "supports": [list(pair) for pair in supports]})
    pii = {
        "source": f"AI-secure/DecodingTrust@{SOURCE_COMMIT} data/privacy/enron_data/five_shot.json",
        "entries": pii_pool,
    }

    written = []
    for fname, obj in (("enron.json", enron), ("pii_people.json", pii)):
        path = out / fname
        path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        written.append(path)
    attr = out / "ATTRIBUTION.md"
    attr.write_text(ATTRIBUTION, encoding="utf-8")
    written.append(attr)
    return written
