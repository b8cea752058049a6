"""Calibration-seed variance: one score from K calibration seeds, with an interval that includes
the spread between seeds (two-level bootstrap). Pure Python.

GPTQ, AWQ, SparseGPT and Wanda compress from a random draw of calibration windows, so one seed's
score is one draw of the method: `bootstrap_ci` over prompts says how sure we are of *that*
variant, not of the method. With K seeds evaluated on the same prompts:

- score: the mean of the K per-seed scores (each seed's own `score_fn` on the shared prompts);
- interval: percentile bootstrap where each replicate (1) resamples the prompts, stratified as the
  score is, **once** and applies the same prompt draw to every seed (prompts are crossed with
  seeds, not nested in them: resampling them independently per seed would shrink the prompt part
  by about 1/K for seeds that agree), then (2) draws K seeds with replacement and averages their
  scores on that prompt draw. The seed draw uses deviations from the replicate's seed mean
  inflated by sqrt(K/(K-1)), so its variance is the unbiased s²/K rather than (K-1)/K of it;
- decomposition (law of total variance over the replicates): `var_prompts` is the variance of the
  all-seed mean across prompt draws, `var_seeds` the mean over prompt draws of the seed-draw
  variance (s²/K, s² the sample variance of the K seed scores). `seed_share` =
  var_seeds / (var_seeds + var_prompts): the share of the interval's variance that is between seeds.

The prompt stream is `random.Random(seed)` used exactly as `stats.bootstrap_ci` uses it, so K
identical seeds give exactly the single-run interval (tests/trust/test_seed_variance.py). With few
seeds the seed level is a small-sample estimate: simulated coverage is in that test and in
docs/decisions.md ("Calibration-seed variance").
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .stats import by_scenario, collapse_singletons, resample
from .types import Judged, PromptRecord

ScoreFn = Callable[[Sequence[Judged]], float | None]
StratumFn = Callable[[PromptRecord], str]

MAX_SEEDS = 20  # `ctrust run --calib-seeds` bound: each seed is one compression (minutes) and one run
SEED_STREAM = 0x5EED  # offset of the seed-draw RNG from the prompt RNG
SCORE_RANGE = (0.0, 100.0)  # every trust score is on this scale


@dataclass(frozen=True)
class SeedVariance:
    """One dimension's score pooled over calibration seeds, its interval and variance split."""

    dimension: str
    per_seed: tuple[float | None, ...]  # each seed's score on the shared prompts, in seed order
    score: float | None  # mean of per_seed (None when any seed has no score)
    ci95: tuple[float, float] | None
    n_prompts: int  # prompts every seed judged
    var_seeds: float | None  # between-seed part of the bootstrap variance of `score` (points²)
    var_prompts: float | None  # prompt part (points²)
    n_boot: int = 0  # replicates that gave a score
    note: str = ""

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    @property
    def seed_share(self) -> float | None:
        """Share of the score's bootstrap variance that is between calibration seeds (0..1)."""
        if self.var_seeds is None or self.var_prompts is None:
            return None
        total = self.var_seeds + self.var_prompts
        return 0.0 if total <= 0 else self.var_seeds / total

    @property
    def seed_sd(self) -> float | None:
        """Sample standard deviation of the per-seed scores (points)."""
        vals = [v for v in self.per_seed if v is not None]
        if len(vals) < 2 or len(vals) != len(self.per_seed):
            return None
        return math.sqrt(_var(vals, ddof=1))

    def to_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "per_seed": list(self.per_seed), "score": self.score,
                "ci95": list(self.ci95) if self.ci95 else None, "n_prompts": self.n_prompts,
                "n_seeds": self.n_seeds, "seed_sd": self.seed_sd, "var_seeds": self.var_seeds,
                "var_prompts": self.var_prompts, "seed_share": self.seed_share, "n_boot": self.n_boot,
                "method": "two-level bootstrap (shared prompt draw, seed draw with s²/K), percentile",
                "note": self.note}


def _var(xs: Sequence[float], ddof: int = 0) -> float:
    n = len(xs)
    if n - ddof <= 0:
        return 0.0
    m = sum(xs) / n
    return sum((x - m) ** 2 for x in xs) / (n - ddof)


def align(per_seed: Sequence[Sequence[Judged]]) -> list[list[Judged]]:
    """The prompts every seed judged, in the first seed's order, one list per seed."""
    if not per_seed:
        return []
    maps = [{rec.id: (rec, v) for rec, v in judged} for judged in per_seed]
    shared = [rec.id for rec, _ in per_seed[0] if all(rec.id in m for m in maps[1:])]
    seen: set[str] = set()
    ids = [i for i in shared if not (i in seen or seen.add(i))]
    return [[m[i] for i in ids] for m in maps]


def two_level_bootstrap(
    per_seed: Sequence[Sequence[Judged]], score_fn: ScoreFn, *, dimension: str = "", n_boot: int = 1000,
    seed: int = 0, alpha: float = 0.05, stratum: StratumFn = by_scenario,
    bounds: tuple[float, float] | None = SCORE_RANGE,
) -> SeedVariance:
    """Pooled score of K calibration seeds with a two-level bootstrap interval (see module doc).

    `bounds`: the range scores live in; the seed draw's inflated deviations can step outside it
    (scores 40, 0, 30 give replicates below 0), so the interval's ends are clipped to it."""
    aligned = align(per_seed)
    k = len(aligned)
    n = len(aligned[0]) if aligned else 0
    points = tuple(score_fn(a) if a else None for a in aligned)
    score = None if not points or any(p is None for p in points) else sum(points) / k  # type: ignore[arg-type]

    def empty(note: str) -> SeedVariance:
        return SeedVariance(dimension, points, score, None, n, None, None, 0, note)

    if k < 2:
        return empty("one calibration seed: no between-seed variance (use bootstrap_ci)")
    if n < 2:
        return empty("too few prompts shared by every seed")
    if score is None:
        return empty("a seed has no score")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (rec, _) in enumerate(aligned[0]):
        groups[stratum(rec)].append(i)
    strata = collapse_singletons([groups[key] for key in sorted(groups)])  # as the per-run intervals
    rng_prompts, rng_seeds = random.Random(seed), random.Random(seed + SEED_STREAM)
    inflate = math.sqrt(k / (k - 1))
    replicates: list[float] = []
    prompt_means: list[float] = []
    seed_vars: list[float] = []
    for _ in range(n_boot):
        idx = resample(strata, rng_prompts)
        draws = [rng_seeds.randrange(k) for _ in range(k)]  # drawn every replicate: streams stay in step
        scores = [score_fn([a[i] for i in idx]) for a in aligned]
        if any(s is None for s in scores):
            continue
        vals: list[float] = scores  # type: ignore[assignment]
        m = sum(vals) / k
        replicates.append(m + inflate * sum(vals[j] - m for j in draws) / k)
        prompt_means.append(m)
        seed_vars.append(_var(vals, ddof=1) / k)
    if not replicates:
        return empty("no bootstrap replicate gave a score")
    if len(replicates) < n_boot // 2:
        return empty("most bootstrap replicates lost a scenario the score needs")
    replicates.sort()
    last = len(replicates) - 1
    ci = (replicates[int((alpha / 2) * last)], replicates[int((1 - alpha / 2) * last)])
    if bounds is not None:
        ci = (min(max(ci[0], bounds[0]), bounds[1]), min(max(ci[1], bounds[0]), bounds[1]))
    return SeedVariance(dimension, points, score, ci, n, sum(seed_vars) / len(seed_vars), _var(prompt_means),
                        len(replicates))


__all__ = ["MAX_SEEDS", "SeedVariance", "align", "two_level_bootstrap"]
