"""Adaptive evaluation: stratified prompt order + a group-sequential non-inferiority design.

Order. `stratified_order` interleaves a dimension's strata in proportion to their sizes, so every
prefix of the order is (within one prompt per stratum) a stratified sample of the whole set, and
the score of a prefix estimates the same quantity as the full score.

Design. A dimension is evaluated in rounds at information fractions `looks` (default 25/50/75/100%
of its prompts). At each look the non-inferiority statistic at the margin (the same paired score
statistic as the fixed-size verdict, `paired.py`) is compared with group-sequential boundaries
from the Lan-DeMets O'Brien-Fleming-type spending function

    a(t) = 2 - 2 Phi(z_{1 - a/2} / sqrt(t)),   a = alpha / 2 per side,

so a false "non-inferior" (and, symmetrically, a false "inferior") is spent across the looks and
totals at most alpha/2 over the whole sequence, as in the fixed design; it is not repeated naive
testing. The boundaries are exact for a Brownian-motion statistic (Armitage-McPherson-Rowe recursion
by numerical integration), e.g. z = 4.33, 2.96, 2.36, 2.01 for four equal looks at alpha = 0.05.
Between looks a dimension also stops, as *inconclusive*, when under its current trend the chance
of reaching either verdict at the last look is below `futility` (non-binding: stopping for futility
never makes a false verdict, it only gives up on one). Pure Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Callable, Sequence, TypeVar

from .noninferiority import INCONCLUSIVE, INFERIOR, NON_INFERIOR, TOO_FEW, NonInferiority
from .paired import PairedModel

T = TypeVar("T")
_N = NormalDist()
DEFAULT_LOOKS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
DEFAULT_FUTILITY = 0.15  # bench_adaptive.py: ~45% of generations saved, ~97% identical verdicts
GRID = 240  # integration points per look


def stratified_order(items: Sequence[T], stratum: Callable[[T], str]) -> list[T]:
    """Interleave strata proportionally: item j of a stratum of size n_s sorts at (j + 0.5) / n_s.

    Within a stratum the given order is kept (profiles already draw seeded random subsets), so any
    prefix holds about len(prefix) * n_s / n items of each stratum (never off by more than one).
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[stratum(item)].append(i)
    keyed = []
    for key, idx in groups.items():
        n_s = len(idx)
        keyed += [((j + 0.5) / n_s, key, i) for j, i in enumerate(idx)]
    keyed.sort()
    return [items[i] for _, _, i in keyed]


def obf_spending(t: float, a: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type cumulative one-sided alpha spent by information fraction t."""
    if t <= 0:
        return 0.0
    return min(a, 2.0 - 2.0 * _N.cdf(_N.inv_cdf(1.0 - a / 2.0) / math.sqrt(min(t, 1.0))))


@lru_cache(maxsize=64)
def boundaries(looks: tuple[float, ...], a: float) -> tuple[float, ...]:
    """One-sided critical z per look spending `a` in total (upper crossings; non-binding elsewhere).

    Recursion on the B-value scale B(t) = Z sqrt(t): the sub-density of paths that have not crossed
    is carried from look to look on a grid and convolved with the Gaussian increment.
    """
    if not looks or any(b <= a_ for a_, b in zip(looks, looks[1:])) or looks[-1] > 1.0 + 1e-12:
        raise ValueError(f"looks must increase within (0, 1]: {looks}")
    crit: list[float] = []
    grid: list[float] = []
    dens: list[float] = []  # sub-density on `grid` of paths still below every boundary
    step = 0.0
    prev_t = 0.0
    spent_before = 0.0
    for t in looks:
        target = obf_spending(t, a) - spent_before
        dt = t - prev_t
        sd = math.sqrt(dt)

        def cross(c: float, t: float = t, sd: float = sd, grid: list[float] = grid, dens: list[float] = dens,
                  step: float = step) -> float:
            """P(not crossed before, Z_k >= c)."""
            bound = c * math.sqrt(t)
            if not grid:
                return 1.0 - _N.cdf(bound / sd)
            return sum(f * (1.0 - _N.cdf((bound - u) / sd)) for u, f in zip(grid, dens)) * step

        if target <= 1e-15:
            c = 8.0
        else:
            lo, hi = 0.0, 12.0
            for _ in range(60):
                mid = (lo + hi) / 2.0
                if cross(mid) > target:
                    lo = mid
                else:
                    hi = mid
            c = (lo + hi) / 2.0
        crit.append(c)
        spent_before += cross(c)
        # carry the sub-density of non-crossed paths to this look
        top = c * math.sqrt(t)
        bottom = -8.0 * math.sqrt(t)
        new_step = (top - bottom) / GRID
        new_grid = [bottom + (i + 0.5) * new_step for i in range(GRID)]
        if not grid:
            new_dens = [_N.pdf(b / sd) / sd for b in new_grid]
        else:
            new_dens = [sum(f * _N.pdf((b - u) / sd) for u, f in zip(grid, dens)) * step / sd for b in new_grid]
        grid, dens, step, prev_t = new_grid, new_dens, new_step, t
    return tuple(crit)


@dataclass(frozen=True)
class SequentialDesign:
    """Looks (fractions of a dimension's prompts), alpha (two-sided, as the fixed design) and futility."""

    alpha: float = 0.05
    looks: tuple[float, ...] = DEFAULT_LOOKS
    futility: float = DEFAULT_FUTILITY

    @property
    def critical(self) -> tuple[float, ...]:
        return boundaries(tuple(self.looks), self.alpha / 2.0)

    def describe(self) -> str:
        looks = "/".join(f"{100 * t:.0f}" for t in self.looks)
        crit = ", ".join(f"{c:.2f}" for c in self.critical)
        return (f"group-sequential, looks at {looks}% of each dimension's prompts, O'Brien-Fleming-type "
                f"Lan-DeMets spending of alpha/2 = {self.alpha / 2:g} per side (z = {crit}); "
                f"stop as inconclusive when the chance of a verdict at the last look is < {self.futility:g}")

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "looks": list(self.looks), "futility": self.futility,
                "critical_z": list(self.critical), "spending": "Lan-DeMets O'Brien-Fleming type, alpha/2 per side"}

    def decide(self, look: int, model: PairedModel | None, margin: float) -> tuple[str | None, float | None]:
        """(verdict, z at the margin) at look index `look`; verdict None means: evaluate more prompts."""
        last = look == len(self.looks) - 1
        if model is None:
            return (TOO_FEW if last else None), None
        z = model.z(-margin)
        c = self.critical[look]
        if z >= c:
            return NON_INFERIOR, z
        if z <= -c:
            return INFERIOR, z
        if last:
            return INCONCLUSIVE, z
        if self.futility > 0 and self.chance_of_verdict(look, z) < self.futility:
            return INCONCLUSIVE, z
        return None, z

    def chance_of_verdict(self, look: int, z: float) -> float:
        """Conditional power of either verdict at the last look if the current trend holds."""
        if not math.isfinite(z):
            return 1.0
        t = self.looks[look]
        b = z * math.sqrt(t)
        drift = b / t
        rest = 1.0 - t
        if rest <= 0:
            return 0.0
        c = self.critical[-1]
        mean = b + drift * rest
        sd = math.sqrt(rest)
        return (1.0 - _N.cdf((c - mean) / sd)) + _N.cdf((-c - mean) / sd)


def prefix_size(t: float, n: int) -> int:
    """Prompts in the prefix at information fraction t (the whole set at t = 1)."""
    return n if t >= 1.0 else max(1, min(n, math.ceil(t * n)))


@dataclass(frozen=True)
class Outcome:
    """Where a dimension's sequence stopped and what it decided there."""

    verdict: str
    look: int  # index into the design's looks
    n_used: int
    n_total: int
    z: float | None
    ci: tuple[float, float] | None
    method: str | None
    reason: str = ""

    @property
    def early(self) -> bool:
        return self.n_used < self.n_total

    def decision(self, dimension: str, margin: float, design: SequentialDesign) -> NonInferiority:
        """As a `NonInferiority`, its interval the repeated-confidence interval at the stopping look."""
        method = f"{self.method}, sequential look {self.look + 1}/{len(design.looks)}" if self.method else None
        return NonInferiority(dimension, margin, design.alpha, self.verdict, self.ci, self.z, self.n_used, None,
                              method, self.reason)


def outcome_at(design: SequentialDesign, look: int, model: PairedModel | None, why: str, n_used: int,
               n_total: int, margin: float) -> Outcome | None:
    """The outcome if the sequence stops at this look, else None (evaluate more prompts)."""
    verdict, z = design.decide(look, model, margin)
    if verdict is None:
        return None
    ci = None
    if model is not None:
        level = 2.0 * (1.0 - _N.cdf(design.critical[look]))  # repeated-confidence interval at this look
        ci = model.interval(level)
    reason = why
    if verdict == INCONCLUSIVE and look < len(design.looks) - 1:
        reason = (f"stopped for futility after {n_used} of {n_total} prompts: under the current trend a verdict "
                  f"at the last look had < {design.futility:g} chance")
    return Outcome(verdict, look, n_used, n_total, z, ci, model.method if model is not None else None, reason)


def run_sequential(n_total: int, model_at: Callable[[int], tuple[PairedModel | None, str]],
                   design: SequentialDesign, margin: float) -> Outcome:
    """Walk the looks over prefixes of a stratified order; `model_at(n)` gives the prefix's interval model."""
    for k, t in enumerate(design.looks):
        n_k = prefix_size(t, n_total)
        model, why = model_at(n_k)
        out = outcome_at(design, k, model, why, n_k, n_total, margin)
        if out is not None:
            return out
    raise AssertionError("the last look always decides")  # pragma: no cover
