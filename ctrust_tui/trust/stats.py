"""Uncertainty the paper does not report: bootstrap intervals of one run, paired run comparisons.

Resampling is stratified by scenario so that a dimension whose score averages scenario
metrics never loses a scenario in a resample. Seeds are explicit: same input, same interval.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from .noninferiority import DEFAULT_ALPHA, NonInferiority, decide
from .paired import paired_model
from .types import Judged, PromptRecord

ScoreFn = Callable[[Sequence[Judged]], float | None]
StratumFn = Callable[[PromptRecord], str]
T = TypeVar("T")


def by_scenario(record: PromptRecord) -> str:
    return record.scenario


def _strata(judged: Sequence[Judged], stratum: StratumFn = by_scenario) -> list[list[Judged]]:
    groups: dict[str, list[Judged]] = defaultdict(list)
    for item in judged:
        groups[stratum(item[0])].append(item)
    return [groups[k] for k in sorted(groups)]


def bootstrap_ci(
    judged: Sequence[Judged], score_fn: ScoreFn, *, n_boot: int = 500, seed: int = 0, alpha: float = 0.05,
    stratum: StratumFn = by_scenario,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `score_fn` over prompts, stratified by `stratum` (scenario).

    Group statistics (fairness DPD/EOD) pass a finer stratum so every resample keeps both groups.
    A stratum of one prompt has no spread to resample, so singleton strata are resampled as one
    pooled stratum (collapsed strata): `--limit 36` on quick OOD (36 scenarios, one prompt each)
    otherwise gave a zero-width interval. Where the pooled resamples lose a scenario the score
    needs (the paper's all-scenario aggregates), too few resamples score and there is no interval.
    """
    if len(judged) < 2:
        return None
    rng = random.Random(seed)
    strata = collapse_singletons(_strata(judged, stratum))
    values: list[float] = []
    for _ in range(n_boot):
        v = score_fn(resample(strata, rng))
        if v is not None:
            values.append(v)
    return percentile_interval(values, n_boot, alpha)


def collapse_singletons(strata: list[list[T]]) -> list[list[T]]:
    """Strata of one item have no spread to resample: two or more of them are resampled as one pooled
    stratum (collapsed strata), the rest within themselves."""
    singles = [g[0] for g in strata if len(g) == 1]
    if len(singles) < 2:
        return strata
    return [g for g in strata if len(g) > 1] + [singles]


def resample(strata: Sequence[Sequence[T]], rng: random.Random) -> list[T]:
    """One stratified bootstrap resample: each stratum drawn with replacement to its own size."""
    sample: list[T] = []
    for group in strata:
        sample.extend(group[rng.randrange(len(group))] for _ in range(len(group)))
    return sample


def percentile_interval(values: list[float], n_boot: int, alpha: float = 0.05) -> tuple[float, float] | None:
    """The percentile interval of the resamples that scored; None where most did not (a resample that lost a
    scenario the score needs has no score, and the percentiles of the rest describe nothing)."""
    if not values or len(values) < n_boot // 2:
        return None
    values = sorted(values)
    return values[int((alpha / 2) * (len(values) - 1))], values[int((1 - alpha / 2) * (len(values) - 1))]


@dataclass(frozen=True)
class PairedComparison:
    """Run B minus run A on the prompts both runs judged.

    `ci95` is the paired interval of `paired.py` (it holds at n = 2); None with `note` saying why
    ("too few prompts") where no valid interval exists. `decision` is the non-inferiority verdict
    when a margin was asked for.
    """

    dimension: str
    n_shared: int
    score_a: float | None
    score_b: float | None
    delta: float | None
    ci95: tuple[float, float] | None
    flipped: int  # prompts whose verdict differs
    flipped_ids: tuple[str, ...]
    method: str | None = None
    note: str = ""
    decision: NonInferiority | None = None

    @property
    def significant(self) -> bool:
        return self.ci95 is not None and (self.ci95[0] > 0 or self.ci95[1] < 0)

    def to_dict(self) -> dict:
        d = {
            "dimension": self.dimension,
            "n_shared": self.n_shared,
            "score_a": self.score_a,
            "score_b": self.score_b,
            "delta": self.delta,
            "ci95": list(self.ci95) if self.ci95 else None,
            "significant": self.significant,
            "method": self.method,
            "note": self.note,
            "flipped": self.flipped,
            "flipped_ids": list(self.flipped_ids),
        }
        if self.decision is not None:
            d["noninferiority"] = self.decision.to_dict()
        return d


def paired_compare(
    dimension: str,
    a: Sequence[Judged],
    b: Sequence[Judged],
    score_fn: ScoreFn,
    *,
    stratum: StratumFn = by_scenario,
    linear: bool = True,
    margin: float | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> PairedComparison:
    """Pair the prompts both runs judged, stratified as the score is; interval and optional verdict.

    `alpha` is the two-sided level of the interval used for the verdict; `ci95` is always 95%.
    """
    by_a = {rec.id: (rec, v) for rec, v in a}
    by_b = {rec.id: (rec, v) for rec, v in b}
    shared = sorted(set(by_a) & set(by_b))
    pairs = [(by_a[i], by_b[i]) for i in shared]
    flipped_ids = tuple(i for i in shared if by_a[i][1].verdict != by_b[i][1].verdict)
    sa, sb = score_fn([p[0] for p in pairs]), score_fn([p[1] for p in pairs])
    delta = None if sa is None or sb is None else sb - sa
    model, why = paired_model(pairs, score_fn, stratum, linear=linear) if delta is not None else (None, "no score")
    ci = model.interval(0.05) if model is not None else None
    decision = None
    if margin is not None:
        decision = decide(dimension, model, margin=margin, alpha=alpha, n=len(shared), reason=why)
    return PairedComparison(dimension, len(shared), sa, sb, delta, ci, len(flipped_ids), flipped_ids,
                            model.method if model is not None else None, why, decision)
