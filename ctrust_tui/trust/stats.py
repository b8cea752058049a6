"""Uncertainty the paper does not report: bootstrap intervals and paired run comparisons.

Resampling is stratified by scenario so that a dimension whose score averages scenario
metrics never loses a scenario in a resample. Seeds are explicit: same input, same interval.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

from .types import Judged, PromptRecord

ScoreFn = Callable[[Sequence[Judged]], float | None]
StratumFn = Callable[[PromptRecord], str]


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
    """
    if len(judged) < 2:
        return None
    rng = random.Random(seed)
    strata = _strata(judged, stratum)
    values: list[float] = []
    for _ in range(n_boot):
        sample: list[Judged] = []
        for group in strata:
            sample.extend(group[rng.randrange(len(group))] for _ in range(len(group)))
        v = score_fn(sample)
        if v is not None:
            values.append(v)
    if not values:
        return None
    values.sort()
    lo = values[int((alpha / 2) * (len(values) - 1))]
    hi = values[int((1 - alpha / 2) * (len(values) - 1))]
    return (lo, hi)


@dataclass(frozen=True)
class PairedComparison:
    """Run B minus run A on the prompts both runs judged."""

    dimension: str
    n_shared: int
    score_a: float | None
    score_b: float | None
    delta: float | None
    ci95: tuple[float, float] | None
    flipped: int  # prompts whose verdict differs
    flipped_ids: tuple[str, ...]

    @property
    def significant(self) -> bool:
        return self.ci95 is not None and (self.ci95[0] > 0 or self.ci95[1] < 0)

    def to_dict(self) -> dict:
        return {
            "dimension": self.dimension,
            "n_shared": self.n_shared,
            "score_a": self.score_a,
            "score_b": self.score_b,
            "delta": self.delta,
            "ci95": list(self.ci95) if self.ci95 else None,
            "significant": self.significant,
            "flipped": self.flipped,
            "flipped_ids": list(self.flipped_ids),
        }


def paired_compare(
    dimension: str,
    a: Sequence[Judged],
    b: Sequence[Judged],
    score_fn: ScoreFn,
    *,
    n_boot: int = 500,
    seed: int = 0,
    stratum: StratumFn = by_scenario,
) -> PairedComparison:
    """Paired bootstrap: resample shared prompt ids (stratified), score both runs on the same draw."""
    by_a = {rec.id: (rec, v) for rec, v in a}
    by_b = {rec.id: (rec, v) for rec, v in b}
    shared = sorted(set(by_a) & set(by_b))
    pa = [by_a[i] for i in shared]
    pb = [by_b[i] for i in shared]
    flipped_ids = tuple(i for i in shared if by_a[i][1].verdict != by_b[i][1].verdict)
    sa, sb = score_fn(pa), score_fn(pb)
    delta = None if sa is None or sb is None else sb - sa
    ci = None
    if len(shared) >= 2 and delta is not None:
        rng = random.Random(seed)
        strata: dict[str, list[int]] = defaultdict(list)
        for idx, i in enumerate(shared):
            strata[stratum(by_a[i][0])].append(idx)
        deltas: list[float] = []
        for _ in range(n_boot):
            draw: list[int] = []
            for key in sorted(strata):
                g = strata[key]
                draw.extend(g[rng.randrange(len(g))] for _ in range(len(g)))
            xa, xb = score_fn([pa[j] for j in draw]), score_fn([pb[j] for j in draw])
            if xa is not None and xb is not None:
                deltas.append(xb - xa)
        if deltas:
            deltas.sort()
            ci = (deltas[int(0.025 * (len(deltas) - 1))], deltas[int(0.975 * (len(deltas) - 1))])
    return PairedComparison(dimension, len(shared), sa, sb, delta, ci, len(flipped_ids), flipped_ids)
