"""Format failures: outputs the paper's parser cannot read but a person (the robust parser) can.

A compressed model often loses the answer *format* before it loses *judgement*: a 3-bit model
says "This is wrong." where the fork's ethics parser wants "wrong". Under paper rules that is a
non-answer and counts against the model; under robust rules it is the answer "wrong". This module
measures how much of a score, and of a paired score change, comes from such outputs.

The split of a paired delta (variant minus base, paper rules) is exact and additive:
  repaired run   = paper verdicts with every format failure replaced by its robust reading
  changed answers = score(variant, repaired) - score(base, repaired)
  format failures = delta - changed answers
so "changed answers" is the change a format-tolerant reader would still see, and "format failures"
the part that exists only because the paper's parser could not read the answer.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .dimension import Dimension
from .rules import PAPER, ROBUST
from .stats import collapse_singletons, paired_compare, percentile_interval, resample
from .types import Judged, Verdict


@dataclass(frozen=True)
class FormatShare:
    dimension: str
    n: int
    share: float | None  # fraction of outputs paper reads as no answer and robust reads as one

    def to_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "n": self.n, "format_failure_share": self.share}


def _paired(paper: Sequence[Judged], robust: Sequence[Judged]) -> list[tuple[Any, Verdict, Verdict]]:
    rob = {rec.id: v for rec, v in robust}
    return [(rec, v, rob[rec.id]) for rec, v in paper if rec.id in rob]


def format_share(dim: Dimension, paper: Sequence[Judged], robust: Sequence[Judged]) -> FormatShare:
    pairs = _paired(paper, robust)
    if not pairs:
        return FormatShare(dim.id, 0, None)
    return FormatShare(dim.id, len(pairs), sum(dim.format_failure_fraction(p, r) for _, p, r in pairs) / len(pairs))


def repaired(dim: Dimension, paper: Sequence[Judged], robust: Sequence[Judged]) -> list[Judged]:
    """Paper verdicts, each format failure replaced by the dimension's repair of it."""
    return [(rec, dim.repair(p, r) if dim.format_failure(p, r) else p) for rec, p, r in _paired(paper, robust)]


@dataclass(frozen=True)
class FormatSplit:
    """Variant (B) minus base (A) under paper rules, split into changed answers + format failures."""

    dimension: str
    n_shared: int
    delta: float | None
    answers: float | None
    formats: float | None
    ci_delta: tuple[float, float] | None
    ci_answers: tuple[float, float] | None
    ci_formats: tuple[float, float] | None
    share_a: float | None
    share_b: float | None

    def to_dict(self) -> dict[str, Any]:
        def ci(x: tuple[float, float] | None) -> list[float] | None:
            return list(x) if x else None

        return {
            "dimension": self.dimension, "n_shared": self.n_shared,
            "delta": self.delta, "ci95": ci(self.ci_delta),
            "changed_answers": self.answers, "changed_answers_ci95": ci(self.ci_answers),
            "format_failures": self.formats, "format_failures_ci95": ci(self.ci_formats),
            "format_failure_share_a": self.share_a, "format_failure_share_b": self.share_b,
        }


def _components(dim: Dimension, a: list[tuple[Judged, Judged]], b: list[tuple[Judged, Judged]]
                ) -> tuple[float, float, float] | None:
    """(delta, changed answers, format failures) for aligned (paper, repaired) items of A and B."""
    sa = dim.score_only([p for p, _ in a], PAPER)
    sb = dim.score_only([p for p, _ in b], PAPER)
    ra = dim.score_only([r for _, r in a], PAPER)
    rb = dim.score_only([r for _, r in b], PAPER)
    if None in (sa, sb, ra, rb):
        return None
    delta = sb - sa  # type: ignore[operator]
    answers = rb - ra  # type: ignore[operator]
    return delta, answers, delta - answers


def format_split(dim: Dimension, run_a: Mapping[str, Sequence[Judged]], run_b: Mapping[str, Sequence[Judged]],
                 *, n_boot: int = 500, seed: int = 0) -> FormatSplit:
    """Paired split over the records both runs judged under both rule sets (stratified bootstrap)."""
    pa = _paired(run_a[PAPER], run_a[ROBUST])
    pb = _paired(run_b[PAPER], run_b[ROBUST])
    by_a = {rec.id: ((rec, p), (rec, dim.repair(p, r) if dim.format_failure(p, r) else p)) for rec, p, r in pa}
    by_b = {rec.id: ((rec, p), (rec, dim.repair(p, r) if dim.format_failure(p, r) else p)) for rec, p, r in pb}
    shared = sorted(set(by_a) & set(by_b))
    a = [by_a[i] for i in shared]
    b = [by_b[i] for i in shared]
    share_a = format_share(dim, [x for x, _ in a], [(rec, r) for rec, _, r in pa if rec.id in by_b]).share
    share_b = format_share(dim, [x for x, _ in b], [(rec, r) for rec, _, r in pb if rec.id in by_a]).share
    point = _components(dim, a, b) if shared else None
    cis: list[tuple[float, float] | None] = [None, None, None]
    if point is not None and len(shared) >= 2 and n_boot > 0:
        # the per-run intervals' resampling (stats.bootstrap_ci): one-prompt scenarios pooled, as `--limit 36`
        # gives quick OOD (36 scenarios), where resampling each alone printed -21.7 [-21.7, -21.7]
        rng = random.Random(seed)
        groups: dict[str, list[int]] = defaultdict(list)
        for idx, (item, _) in enumerate(a):
            groups[dim.stratum(item[0])].append(idx)
        strata = collapse_singletons([groups[key] for key in sorted(groups)])
        draws: list[tuple[float, float, float]] = []
        for _ in range(n_boot):
            idx = resample(strata, rng)
            comp = _components(dim, [a[j] for j in idx], [b[j] for j in idx])
            if comp is not None:
                draws.append(comp)
        cis = [percentile_interval([d[k] for d in draws], n_boot) for k in range(3)]
        # the delta and the changed answers are paired comparisons (paper runs; runs repaired by the robust
        # reading): they get the verdicts' interval (stats.paired_compare: Tango's score interval, else a
        # stratified jackknife), which holds at small n where the percentile bootstrap is too narrow (n = 36
        # AdvGLUE: [-35.2, +2.4] against [-33.3, -2.8]); only the format-failure part keeps the bootstrap
        def paired(k: int) -> tuple[float, float] | None:
            return paired_compare(dim.id, [x[k] for x in a], [x[k] for x in b],
                                  lambda j: dim.score_only(j, PAPER), stratum=dim.stratum,
                                  linear=dim.score_is_mean).ci95

        cis[0], cis[1] = paired(0), paired(1)
    return FormatSplit(dim.id, len(shared), *(point or (None, None, None)), cis[0], cis[1], cis[2],
                       share_a, share_b)
