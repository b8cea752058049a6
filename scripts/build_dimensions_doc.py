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
    lines = ["| id | dimension | scenarios | smoke | quick | paper | paper generations | deviations |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    totals = {"smoke": 0, "quick": 0, "paper": 0}
    for d in DIMENSION_IDS:
        dim = get_dimension(d)
        recs = {p: dim.build_prompts(get_profile(p)) for p in totals}
        for p, rs in recs.items():
            totals[p] += sum(r.decoding.n for r in rs)
        paper_gens = sum(r.decoding.n for r in recs["paper"])
        lines.append(f"| `{d}` | {dim.info.title} | {len(dim.scenarios())} | {len(recs['smoke'])} | "
                     f"{len(recs['quick'])} | {len(recs['paper'])} | {paper_gens:,} | {len(dim.info.deviations)} |")
    lines.append("")
    lines.append(
        f"Generations in all: smoke {totals['smoke']:,}, quick {totals['quick']:,}, paper {totals['paper']:,}. "
        "Run time on 2 CPU cores with the 135M default model: smoke ~4 min (measured), quick ~1 h "
        "with batching alone (estimated from a partial run: long 5-shot MMLU and 32-shot fairness "
        "prompts dominate); the shared-prefix engine computes about half as many prompt tokens for "
        "the few-shot dimensions (fairness's per-row demonstrations share nothing), not timed end "
        "to end. "
        "The paper profile is for GPUs: its sampled dimensions (toxicity, stereotype: n=25, 150 tokens) "
        "alone are ~266k generations, about 40M generated tokens - at an assumed 2,000 generated tokens/s "
        "for a batched 7B model on one modern GPU that is ~6 h, plus the classification dimensions "
        "(prefill-bound, ~1-2 h). These GPU figures are estimates, not measurements."
    )
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
