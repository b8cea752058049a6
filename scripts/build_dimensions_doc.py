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


def rules_section(db: Path, base: int, variant: int) -> str:
    """Both rule sets side by side for a dense run and a compressed one, with format-failure shares and
    the paired paper delta split into changed answers and format failures (`ctrust compare --json`)."""
    from ctrust_tui.compare import compare_format
    from ctrust_tui.trust.format_failures import format_share
    from ctrust_tui.trust.rules import PAPER, ROBUST

    def ci(x: tuple[float, float] | None) -> str:
        return f"[{x[0]:+.1f}, {x[1]:+.1f}]" if x else ""

    def num(x: float | None, signed: bool = False) -> str:
        return "—" if x is None else (f"{x:+.1f}" if signed else f"{x:.1f}")

    with open_store(db, readonly=True) as store:
        runs = {r: store.run(r) for r in (base, variant)}
        sc = {(x.run_id, x.dimension, x.rules): x for x in store.scores([base, variant], rules=None)}
        splits = {sp.dimension: sp for sp in compare_format(store, base, variant)}
        lines = [
            f"Base run #{base} ({runs[base].compression}) and variant run #{variant} ({runs[variant].compression}), "
            f"profile {runs[base].profile}. *fmt-fail* = share of records the paper's parser reads as no answer "
            "while the robust parser reads one. The paired paper delta (variant − base) is split into *changed "
            "answers* (the delta after every format failure is read the robust way) and *format failures* "
            "(the rest); the two add up to the delta; intervals are paired, stratified bootstrap 95%.",
            "",
            "| dimension | paper base | paper variant | robust base | robust variant | fmt-fail base | fmt-fail variant "
            "| paper Δ | changed answers | format failures |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for d in DIMENSION_IDS:
            if d not in runs[base].dimensions or d not in runs[variant].dimensions:
                continue
            dim = get_dimension(d)
            shares = [format_share(dim, store.judged(r, d, PAPER), store.judged(r, d, ROBUST)).share
                      for r in (base, variant)]
            sp = splits.get(d)

            def pct(x: float | None) -> str:
                return "—" if x is None else f"{100 * x:.0f}%"

            cells = [f"`{d}`"] + [num(sc[(r, d, rules)].score if (r, d, rules) in sc else None)
                                  for rules in (PAPER, ROBUST) for r in (base, variant)]
            cells += [pct(shares[0]), pct(shares[1])]
            if sp is None:
                cells += ["", "", ""]
            else:
                cells += [f"{num(sp.delta, True)} {ci(sp.ci_delta)}", f"{num(sp.answers, True)} {ci(sp.ci_answers)}",
                          f"{num(sp.formats, True)} {ci(sp.ci_formats)}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path)
    ap.add_argument("--runs", default="")
    ap.add_argument("--note", default="")
    ap.add_argument("--pair", default="", help="BASE,VARIANT run ids for the rule-set comparison section")
    ap.add_argument("--pair-note", default="")
    args = ap.parse_args()
    parts = [INTRO, "## Overview (prompt counts per profile)\n", overview()]
    if args.db and args.runs:
        parts += ["\n## Default model: SmolLM2-135M-Instruct (dense), smoke and quick\n", args.note + "\n",
                  scores(args.db, [int(x) for x in args.runs.split(",")])]
    if args.db and args.pair:
        base, variant = (int(x) for x in args.pair.split(","))
        parts += ["\n## Paper vs robust rules on the default model: format failures, measured\n",
                  args.pair_note + "\n", rules_section(args.db, base, variant)]
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
