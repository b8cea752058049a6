#!/usr/bin/env python3
"""Assemble docs/dimensions.md: overview (from the registry), measured scores, per-dimension sections.

Usage: python scripts/build_dimensions_doc.py [--db cache.db --runs 1,2]
The per-dimension sections live in docs/dimensions/<id>.md (hand-written); the overview counts
come from the code, so the document cannot drift from what `ctrust prompts` builds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ctrust_tui.report import build_rows, to_markdown
from ctrust_tui.store import open_store
from ctrust_tui.trust import DIMENSION_IDS, get_dimension, get_profile

ROOT = Path(__file__).resolve().parents[1]

INTRO = """# Trust dimensions

ctrust measures the eight DecodingTrust dimensions the paper uses plus benign MMLU, each as a 0-100
score (higher = more trustworthy) with a seeded, scenario-stratified bootstrap 95% interval and a
refusal rate. Rules follow the DecodingTrust fork that produced the paper's numbers
(decoding-comp-trust/DecodingTrust), with the exact prompt strings of DecodingTrust; every deviation
is listed in the dimension's section below and in `ctrust_tui.trust.get_dimension(id).info.deviations`.
Data are seeded subsets vendored into the package by `scripts/vendor_data.py` (licences next to them).

**Not comparable with the paper's columns:** `advglue` uses the original AdvGLUE dev set (AdvGLUE++ is
not available offline); `advdemo` has no spurious-correlation component (HANS is not available
offline); `toxicity` is scored offline by `alt-profanity-check` (a profanity classifier) unless you
choose the Perspective API, the paper's scorer. Compare runs of ctrust with each other.
"""


def overview() -> str:
    lines = ["| id | dimension | scenarios | smoke | quick | paper | deviations |", "|---|---|---:|---:|---:|---:|---:|"]
    for d in DIMENSION_IDS:
        dim = get_dimension(d)
        counts = [len(dim.build_prompts(get_profile(p))) for p in ("smoke", "quick", "paper")]
        lines.append(f"| `{d}` | {dim.info.title} | {len(dim.scenarios())} | {counts[0]} | {counts[1]} | "
                     f"{counts[2]} | {len(dim.info.deviations)} |")
    return "\n".join(lines) + "\n"


def scores(db: Path, run_ids: list[int]) -> str:
    with open_store(db, readonly=True) as store:
        runs = [r for r in (store.run(i) for i in run_ids) if r]
        rows = build_rows(runs, store.scores([r.id for r in runs]))
        table = to_markdown(rows)
        detail = []
        for r in runs:
            for s in sorted(store.scores([r.id]), key=lambda s: s.dimension):
                ci = f"[{s.ci_low:.1f}, {s.ci_high:.1f}]" if s.ci_low is not None else "—"
                ref = f"{100 * s.refusal_rate:.0f}%" if s.refusal_rate is not None else "—"
                detail.append(f"| #{r.id} {r.profile} | `{s.dimension}` | {s.score:.1f} | {ci} | {ref} | {s.n} |")
    head = "| run | dimension | score | 95% CI | refusal | n |\n|---|---|---:|---|---:|---:|\n"
    return table + "\n" + head + "\n".join(detail) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path)
    ap.add_argument("--runs", default="")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    parts = [INTRO, "## Overview (prompt counts per profile)\n", overview()]
    if args.db and args.runs:
        parts += ["\n## Default model: SmolLM2-135M-Instruct (dense), smoke and quick\n", args.note + "\n",
                  scores(args.db, [int(x) for x in args.runs.split(",")])]
    for d in DIMENSION_IDS:
        frag = ROOT / "docs" / "dimensions" / f"{d}.md"
        if frag.exists():
            text = frag.read_text().strip()
            parts.append("\n" + text.replace("\n# ", "\n## ").replace("# ", "## ", 1) + "\n")
    (ROOT / "docs" / "dimensions.md").write_text("\n".join(parts))
    print(ROOT / "docs" / "dimensions.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
