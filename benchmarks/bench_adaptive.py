"""Adaptive evaluation benchmark: generations saved and verdict agreement with the full run.

Two sources of paired verdicts, replayed through the same group-sequential design that
`ctrust recommend --adaptive` uses (trust/sequential.py; no new generations either way):

  replay     finished runs in a cache: `--db cache.db --base 1 --variants 2,3,4` (quick profile runs).
             Every dimension's shared prompts are put in the stratified order, each look's verdict
             is computed from the dimension's own score on the prefix (paired.py), and the result is
             compared with the verdict of the whole run. Generations = prompts x samples per prompt.
  synthetic  no cache needed (`--synthetic`, the default without --db): the quick profile's real
             per-dimension strata and samples per prompt, with per-prompt paired 0/1 values drawn from
             assumed per-spec flip rates and drifts (SPECS below), scored as an equal-weight stratified
             mean. Said so in the output: these are not measurements of a model.

    python benchmarks/bench_adaptive.py --synthetic --reps 100 --margins 2,5
    python benchmarks/bench_adaptive.py --db cache.db --base 1 --variants 2,3,4,5,6,7 --margins 2,5
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ctrust_tui.trust import DIMENSION_IDS, get_dimension, get_profile  # noqa: E402
from ctrust_tui.trust.noninferiority import decide  # noqa: E402
from ctrust_tui.trust.paired import ScoreModel, StratumCounts, paired_model  # noqa: E402
from ctrust_tui.trust.sequential import SequentialDesign, run_sequential, stratified_order  # noqa: E402

# assumed effects of each spec (synthetic mode): share of prompts whose verdict flips, and the mean
# paired difference (fraction of prompts, negative = worse). Shaped after the paper's findings:
# 4-bit keeps trust, 3-bit and 50% pruning lose some; each dimension gets 0.5-1.5x of these.
SPECS = {
    "gptq-4b-g64": (0.04, 0.0),
    "rtn-4b-g32": (0.06, -0.01),
    "awq-3b-g64": (0.12, -0.04),
    "gptq-3b-g64": (0.15, -0.06),
    "wanda-0.5": (0.12, -0.05),
    "sparsegpt-2:4": (0.18, -0.10),
}


def quick_structure() -> dict[str, tuple[list[str], list[int]]]:
    """Per dimension: each quick prompt's stratum and samples per prompt (real profile data)."""
    out = {}
    for d in DIMENSION_IDS:
        dim = get_dimension(d)
        recs = stratified_order(dim.build_prompts(get_profile("quick")), dim.stratum)
        out[d] = ([dim.stratum(r) for r in recs], [r.decoding.n for r in recs])
    return out


def _counts_model(strata: list[str], diffs: list[int], k: int) -> ScoreModel:
    per: dict[str, list[int]] = {}
    for s, e in zip(strata[:k], diffs[:k]):
        c = per.setdefault(s, [0, 0, 0])
        c[0] += e > 0
        c[1] += e < 0
        c[2] += 1
    w = 1.0 / len(per)
    return ScoreModel(tuple(StratumCounts(w, u, dn, n) for u, dn, n in per.values()))


def synthetic_cases(reps: int, seed: int):
    """(spec, dimension, strata, samples, model_at(k), n) for `reps` synthetic paired datasets each."""
    rng = random.Random(seed)
    structure = quick_structure()
    for spec, (flip, drift) in SPECS.items():
        for d, (strata, samples) in structure.items():
            for _ in range(reps):
                f = flip * rng.uniform(0.5, 1.5)
                dr = drift * rng.uniform(0.5, 1.5)
                pu, pd = max(0.0, (f + dr) / 2), max(0.0, (f - dr) / 2)
                diffs = []
                for _ in strata:
                    x = rng.random()
                    diffs.append(1 if x < pu else (-1 if x < pu + pd else 0))
                yield spec, d, samples, (lambda k, s=strata, e=diffs: (_counts_model(s, e, k), "")), len(strata)


def replay_cases(db: Path, base: int, variants: list[int], rules: str):
    """The same, from finished runs in a cache (their shared prompts, in stratified order)."""
    from ctrust_tui.store import open_store

    with open_store(db, readonly=True) as store:
        for vid in variants:
            run = store.run(vid)
            if run is None:
                raise SystemExit(f"no run #{vid} in {db}")
            for d in run.dimensions:
                dim = get_dimension(d)
                by_a = {r.id: (r, v) for r, v in store.judged(base, d, rules)}
                pairs = [(by_a[r.id], (r, v)) for r, v in store.judged(vid, d, rules) if r.id in by_a]
                pairs = stratified_order(pairs, lambda p, dim=dim: dim.stratum(p[0][0]))
                samples = [p[0][0].decoding.n for p in pairs]

                def model_at(k: int, pairs=pairs, dim=dim):
                    return paired_model(pairs[:k], lambda j: dim.score_only(j, rules), dim.stratum,
                                        linear=dim.score_is_mean)

                yield run.compression, d, samples, model_at, len(pairs)


def evaluate(cases, margins: list[float], design: SequentialDesign) -> dict:
    rows: dict[float, dict] = {m: {"used": 0, "total": 0, "same": 0, "n": 0, "full": Counter(), "adaptive": Counter(),
                                   "pairs": Counter(), "early": 0} for m in margins}
    for _spec, _d, samples, model_at, n in cases:
        full_model, why = model_at(n)
        for m in margins:
            r = rows[m]
            full = decide(_d, full_model, margin=m, alpha=design.alpha, n=n, reason=why).verdict
            out = run_sequential(n, model_at, design, m)
            r["used"] += sum(samples[: out.n_used])
            r["total"] += sum(samples)
            r["same"] += out.verdict == full
            r["n"] += 1
            r["full"][full] += 1
            r["adaptive"][out.verdict] += 1
            r["pairs"][f"{full} -> {out.verdict}"] += 1
            r["early"] += out.early
    return {
        str(m): {
            "datasets": r["n"],
            "generations_saved": 1 - r["used"] / r["total"],
            "identical_verdicts": r["same"] / r["n"],
            "stopped_early": r["early"] / r["n"],
            "full_verdicts": dict(r["full"]),
            "adaptive_verdicts": dict(r["adaptive"]),
            "full_to_adaptive": dict(r["pairs"]),
        }
        for m, r in rows.items()
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path)
    ap.add_argument("--base", type=int)
    ap.add_argument("--variants", default="")
    ap.add_argument("--rules", default="paper")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--reps", type=int, default=100, help="synthetic datasets per spec and dimension")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--margins", default="2,5")
    ap.add_argument("--futility", type=float, default=SequentialDesign().futility)
    ap.add_argument("--looks", default=",".join(f"{t:g}" for t in SequentialDesign().looks))
    args = ap.parse_args(argv)
    margins = [float(x) for x in args.margins.split(",")]
    design = SequentialDesign(futility=args.futility, looks=tuple(float(t) for t in args.looks.split(",")))
    started = time.time()
    if args.db and not args.synthetic:
        source = f"replay of cached verdicts: {args.db} base #{args.base} variants {args.variants}"
        cases = replay_cases(args.db, args.base, [int(x) for x in args.variants.split(",") if x], args.rules)
    else:
        source = (f"SYNTHETIC paired data ({args.reps} datasets per spec x dimension): the quick profile's real strata "
                  "and samples per prompt, assumed per-spec flip rates and drifts (bench_adaptive.SPECS); "
                  "no model was run")
        cases = synthetic_cases(args.reps, args.seed)
    result = {"source": source, "design": design.describe(), "by_margin": evaluate(cases, margins, design),
              "seconds": round(time.time() - started, 1)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
