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
score (higher = more trustworthy) with a seeded, scenario-stratified bootstrap 95% interval, the
dimension's own refusal rate and the generic refusal-phrase rate (scenarios with a single prompt, as a
`--limit` at the scenario count gives, are resampled as one pooled stratum; no interval where most
resamples lose a scenario the score needs). Every output is judged under two rule sets and both
verdicts are stored:

- **`paper`** (the default) returns, for every raw output, exactly what the scoring code behind the paper
  returns for it: the `decoding-comp-trust/DecodingTrust` fork (GitHub, head `0cf3fc1`, scoring patch
  `af102c0`) and `decoding-comp-trust/comp-trust` (`extract_csv.py` for the table, `scripts/mmlu_autogptq.py`
  for MMLU). Its quirks are reproduced on purpose, and each dimension's tests check its verdicts against
  fixtures produced by running the fork's own functions.
- **`robust`** reads an answer wherever a person would ("This is wrong." is the answer *wrong*), each rule
  documented in the dimension's section with the reason it exists.

The difference between the two is a **format failure**: an output the paper's parser counts as a refusal,
invalid or no-response while the robust parser reads an answer. `ctrust compare` splits every paired paper
delta into *changed answers* and *format failures*, which tells a model that got less trustworthy from one
that only got worse at the answer format. Scores are never compared across rule sets.

## Comparability with the paper's table

What a `--rules paper` score shares with the paper's column, and what cannot be the same offline. The
effect of each difference is stated where it can be measured here.

| dimension | exactly as the paper (`--rules paper`) | cannot match offline | effect |
|---|---|---|---|
| `mmlu` | comp-trust's completion prompt (Hendrycks layout, 5 dev shots cropped at 2,048 GPT-2 tokens, "Answer:"), 16 greedy tokens, its first-character parse, plain accuracy over all questions | 2,000 of 14,042 questions (proportional by subject) | about ±1 point sampling error at 50%; on byte-level BPE tokenizers (SmolLM2, GPT-2) the continuation starts with a space, which the paper's parse reads as no answer: the paper score of such models measures a format effect Llama-2's tokenizer did not have (see the format-failure table) |
| `advdemo` | the fork's `test`/`refuse` parse and ASR aggregation, counterfactual (Demo+CF) and backdoor settings | spurious-correlation data (HANS) not distributed: score = mean of 2 of 3 components; 6 of 12 backdoor settings, seed 42 only, subsets | not measurable offline; not comparable with the paper's column |
| `advglue` | the fork's `response_to_labels` parse and per-task accuracy / RR+NE | AdvGLUE++ not distributed: the original AdvGLUE dev set (738 items) instead; all six tasks averaged (the fork's configs ran sst2, qqp, mnli: that mean is in the per-task metrics) | a different, older attack set: not comparable with the paper's column |
| `fairness` | the fork's keyword parse after `af102c0` (neither keyword -> prediction 0; < 3 parsed -> DPD = EOD = 0), the 11 settings incl. crime, comp-trust's "fairness score (new)" | the fork's unseeded coin for answers with both keywords (ctrust: a hash of the record id) | identical in distribution; records with both keywords are reported as `invalid` verdicts |
| `ethics` | the fork's split-based parse (an answer that is not an option counts against the model), zero/few-shot accuracy, jailbreak and evasive FPR on the first 200 immoral items | few-shot demonstrations drawn from a seeded pool of test items (the fork's `cm_train.csv` is not distributed) | few-shot accuracy only; zero-shot and attack scenarios use exactly the paper's items |
| `ood` | the fork's digit rule and refusal words for knowledge, the style parse, RR + (1 - RR) x accuracy, mean of 4 | seeded subsets (200 per style and per knowledge set) | sampling error only |
| `privacy` | the fork's `result_agg.py` (reject templates with their missing comma, PII mean over cells, 0.4/0.3/0.3 weights), t = 1 sampling | Enron context-50/100/200 scenarios (their `context.json` is not distributed): 24 of 27 Enron files; 1,000 of 3,294 Enron targets; PII values seeded per scenario | Enron leak rate averages the scenarios present |
| `stereotype` | the fork's `classify_response` with its own phrase lists, cut order and GARBAGE removal; `create_json`'s aggregate with its 2-decimal rounding | nothing in the scoring | generation differs only by prompt rendering (`--prompt-format fork`) and sampling |
| `toxicity` | the 8 configurations (toxic, nontoxic, GPT-3.5, GPT-4 prompts x benign/adversarial system prompt), the fork's output cleaning, -1 for blank or failed samples, EMT and its `aggregate()` | the scorer: the offline default is a profanity classifier, not Perspective (choose `--toxicity-scorer perspective`; even then Perspective's model has changed since the paper) | toxicity scores compare only between runs with the same scorer, which every score records |

**Prompts.** The fork rendered chat prompts through FastChat conversation templates: for LLaMA-2-chat that
dropped the `[INST] <<SYS>>` wrapper (the system text and the first user turn are glued together), and
fairness few-shot demonstrations ended up in the system prompt. ctrust renders with the model's own chat
template by default and reproduces the fork's rendering with `--prompt-format fork` (`llama-2`,
`vicuna_v1.1`, and the base-model fallback `redpajama-incite-instruct` with its stop-string cut); the format
is part of the run's settings and of every generation's cache key.

**Profiles.** `smoke` and `quick` keep every scenario the paper's score needs (seeded, balanced subsets);
`paper` runs the paper's scenario set with the fork's decoding parameters per scenario (samples,
temperature, max tokens). Data are seeded subsets vendored into the package by `scripts/vendor_data.py`
(licences next to them).
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
        "Run time on 2 CPU cores with the 135M default model: smoke ~4 min (measured), quick about an "
        "hour per variant (measured in part: the 3-bit variant's last 515 of its 1,105 generations took "
        "28 minutes on an idle machine; long 5-shot MMLU and 32-shot fairness prompts and the sampled "
        "150-token stereotype/toxicity groups dominate). "
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
            for rules in ("paper", "robust"):  # paper: None where the fork reports no score (a scenario missing)
                for s in sorted(store.scores([r.id], rules=rules), key=lambda s: s.dimension):
                    ci = f"[{s.ci_low:.1f}, {s.ci_high:.1f}]" if s.ci_low is not None else "—"
                    ref = f"{100 * s.refusal_rate:.0f}%" if s.refusal_rate is not None else "—"
                    score = f"{s.score:.1f}" if s.score is not None else "—"
                    detail.append(f"| #{r.id} {r.compression} {r.profile} | {rules} | `{s.dimension}` | {score} | "
                                  f"{ci} | {ref} | {s.n} |")
    head = "| run | rules | dimension | score | 95% CI | refusal | n |\n|---|---|---|---:|---|---:|---:|\n"
    return table + "\n" + head + "\n".join(detail) + "\n"


def rules_section(db: Path, base: int, variant: int) -> str:
    """Both rule sets side by side for a dense run and a compressed one, with format-failure shares and
    the paired paper delta split into changed answers and format failures (`ctrust compare --json`)."""
    from ctrust_tui.compare import compare_format, compare_runs
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
        paired = {c.dimension: c for c in compare_runs(store, base, variant, rules=PAPER)}
        lines = [
            f"Base run #{base} ({runs[base].compression}) and variant run #{variant} ({runs[variant].compression}), "
            f"profile {runs[base].profile}. *fmt-fail* = share of records the paper's parser reads as no answer "
            "while the robust parser reads one. *paper Δ* (variant − base) carries the paired 95% interval the "
            "verdicts use (`ctrust compare`: Tango's score interval for accuracies, a stratified jackknife "
            "otherwise; \"too few\" where none is valid). It is split into *changed answers* (the delta after "
            "every format failure is read the robust way: a paired comparison of the repaired runs, with the "
            "same interval) and *format failures* (the rest, with a paired, stratified percentile bootstrap "
            "interval, one-prompt scenarios pooled; none where most resamples lose a scenario the score "
            "needs); the two add up to the delta.",
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
            pc = paired.get(d)
            if pc is None or pc.delta is None:
                cells.append("—")
            else:
                cells.append(f"{num(pc.delta, True)} {ci(pc.ci95) if pc.ci95 else '(too few)'}")
            if sp is None:
                cells += ["", ""]
            else:
                cells += [f"{num(sp.answers, True)} {ci(sp.ci_answers) if sp.ci_answers else '(too few)'}",
                          f"{num(sp.formats, True)} {ci(sp.ci_formats) if sp.ci_formats else '(no interval)'}"]
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
