"""Paired intervals for a score difference (variant − base) that hold at n = 2..100 prompts.

A percentile bootstrap collapses at small n (two prompts that both flipped give [−50, −50]).
Most trust scores are weighted means of per-prompt values in [0, 100] (accuracy, refusal-credited
accuracy, 1 − toxicity, 1 − leak rate, ...). For those the difference is a stratified mean of
per-prompt differences e_i in [−1, 1], and ctrust inverts Tango's score test for paired
proportions (Tango 1998, Stat Med 17:891), stratified as the score is: at each hypothesised
difference d0 the variance comes from the restricted maximum-likelihood discordance rates under
d0, so "no flips among 2 prompts" still gives a wide interval (d0 in about [−0.66, 0.66]) instead of
a point. Fractional per-prompt differences (toxicity, multi-sample rates) enter as fractional
flips, which over-states their variance (|e| >= e²): conservative, never anti-conservative.
Simulated coverage is in tests/trust/test_paired.py and docs/decisions.md.

Scores that are not such means (fairness: DPD/EOD are max/abs of group rates) get a stratified
delete-one jackknife with a Student-t quantile, and no interval at all ("too few prompts") when a
stratum has fewer than 2 prompts or fewer than `MIN_JACKKNIFE_DF` degrees of freedom remain.

The weights of the mean are found numerically from the dimension's own aggregate (`linearize`),
so this module needs nothing from a dimension but its score function and strata. Pure Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

from .types import Judged, PromptRecord, Verdict, canonical_json

ScoreFn = Callable[[Sequence[Judged]], float | None]
StratumFn = Callable[[PromptRecord], str]

SCORE, JACKKNIFE = "paired score (Tango), stratified", "stratified jackknife-t"
JACKKNIFE_GROUPS = 30  # at most this many delete-a-group replicates per stratum
MIN_JACKKNIFE_DF = 30  # below this the jackknife-t undercovers fairness-type scores (tests/trust/test_paired.py)
LINEAR_TOL = 1e-6  # score points: a linear form must rebuild the score to this precision
PER_ITEM_LIMIT = 400  # above this many prompts, weights are identified per stratum (O(strata * n))
GLOBAL_CANDIDATES = 48  # verdicts tried on a prompt whose own stratum shows only one value


class _NotLinear(Exception):
    pass


def normal_quantile(p: float) -> float:
    return NormalDist().inv_cdf(p)


# ---- Student t (for the jackknife path) ----------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta (Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse Student-t CDF by bisection (df >= 1); the normal quantile for very large df."""
    if df > 1e6:
        return normal_quantile(p)
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return (lo + hi) / 2


# ---- the paired score interval --------------------------------------------------------------------
@dataclass(frozen=True)
class StratumCounts:
    """One stratum of a stratified mean difference, in units of whole-prompt flips.

    `weight` is the stratum's share of the score (weights sum to 1), `n` its (effective) prompt
    count, `up`/`down` the (fractional) count of prompts where the variant is better/worse.
    """

    weight: float
    up: float
    down: float
    n: float

    @property
    def mean(self) -> float:
        return (self.up - self.down) / self.n


def restricted_variance(up: float, down: float, n: float, d0: float) -> float:
    """Var of one prompt's difference under H0: p_up − p_down = d0 (Tango's restricted MLE)."""
    a = 2.0 * n
    b = -(up + down) + (2.0 * n - up + down) * d0
    c = -down * d0 * (1.0 - d0)
    q = (-b + math.sqrt(max(b * b - 4.0 * a * c, 0.0))) / (2.0 * a)  # restricted p_down
    q = min(max(q, max(0.0, -d0)), (1.0 - d0) / 2.0)
    return max(2.0 * q + d0 - d0 * d0, 0.0)


@dataclass(frozen=True)
class ScoreModel:
    """Stratified paired score test, inverted into an interval (all in score points)."""

    strata: tuple[StratumCounts, ...]

    @property
    def n(self) -> float:
        return sum(s.n for s in self.strata)

    @property
    def estimate(self) -> float:
        return 100.0 * sum(s.weight * s.mean for s in self.strata)

    def z(self, d0_points: float) -> float:
        """Score statistic for H0: difference = d0 (points); > 0 means the data sit above d0."""
        d0 = max(-1.0, min(1.0, d0_points / 100.0))
        est = self.estimate / 100.0
        var = sum(s.weight ** 2 * restricted_variance(s.up, s.down, s.n, d0) / s.n for s in self.strata)
        if var <= 0.0:
            gap = est - d0
            return 0.0 if abs(gap) < 1e-12 else math.copysign(math.inf, gap)
        return (est - d0) / math.sqrt(var)

    def interval(self, alpha: float) -> tuple[float, float]:
        crit = normal_quantile(1.0 - alpha / 2.0)
        est = self.estimate

        def bound(edge: float) -> float:
            """Where |z| crosses crit between the estimate and `edge` (Illinois regula falsi)."""
            g_out = abs(self.z(edge)) - crit
            if g_out <= 0:
                return edge
            inside, outside, g_in = est, edge, -crit
            side = 0
            for _ in range(100):
                mid = outside - g_out * (outside - inside) / (g_out - g_in)
                if not (min(inside, outside) < mid < max(inside, outside)):
                    mid = (inside + outside) / 2.0
                g_mid = abs(self.z(mid)) - crit
                if g_mid <= 0:
                    inside, g_in = mid, g_mid
                    if side == -1:
                        g_out /= 2.0
                    side = -1
                else:
                    outside, g_out = mid, g_mid
                    if side == 1:
                        g_in /= 2.0
                    side = 1
                if abs(outside - inside) < 1e-6:
                    break
            return inside

        return (bound(-100.0), bound(100.0))

    @property
    def method(self) -> str:
        return SCORE


@dataclass(frozen=True)
class JackknifeModel:
    """Stratified delete-one jackknife of the difference with a Student-t quantile (points)."""

    estimate: float
    se: float
    df: int
    n: int

    def z(self, d0_points: float) -> float:
        if self.se <= 0.0:
            gap = self.estimate - d0_points
            return 0.0 if abs(gap) < 1e-12 else math.copysign(math.inf, gap)
        return (self.estimate - d0_points) / self.se

    def crit(self, alpha: float) -> float:
        return t_quantile(1.0 - alpha / 2.0, self.df)

    def interval(self, alpha: float) -> tuple[float, float]:
        h = self.crit(alpha) * self.se
        return (self.estimate - h, self.estimate + h)

    @property
    def method(self) -> str:
        return JACKKNIFE


PairedModel = ScoreModel | JackknifeModel


# ---- from a dimension's score function to per-prompt weights -------------------------------------
@dataclass(frozen=True)
class LinearForm:
    """score = sum_i weight_i * value_i (values in points, weights summing to 1), for both runs."""

    strata: tuple[tuple[str, tuple[tuple[float, float, float], ...]], ...]  # (stratum, ((w, vA, vB), ...))

    def counts(self) -> tuple[StratumCounts, ...]:
        out = []
        for _, items in self.strata:
            w = sum(c for c, _, _ in items)
            if w <= 0.0:
                continue
            n_eff = w * w / sum(c * c for c, _, _ in items)
            up = sum(c * max(vb - va, 0.0) for c, va, vb in items) / 100.0
            down = sum(c * max(va - vb, 0.0) for c, va, vb in items) / 100.0
            out.append(StratumCounts(w, n_eff * up / w, n_eff * down / w, n_eff))
        return tuple(out)


def linearize(pairs: Sequence[tuple[Judged, Judged]], score_fn: ScoreFn, stratum: StratumFn) -> LinearForm | None:
    """Per-prompt values and weights of a score that is a weighted mean, or None if it is not one.

    A prompt's value is the score of that prompt alone; its weight is the change of the base
    run's score when its verdict is swapped for the best vs worst verdict observed in its stratum
    (else anywhere in the dimension), divided by the change of value. Prompts where no verdict
    changes the value (nothing to learn the weight from) share the remaining weight equally. The form is accepted only if it rebuilds
    the base, variant and a mixed run's scores to LINEAR_TOL points and its weights sum to 1.
    """
    if not pairs:
        return None
    base = [a for a, _ in pairs]
    variant = [b for _, b in pairs]
    try:
        t_a, t_b = score_fn(base), score_fn(variant)
        if t_a is None or t_b is None:
            return None
        v_a = [score_fn([x]) for x in base]
        v_b = [score_fn([x]) for x in variant]
    except Exception:
        return None
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (a, _) in enumerate(pairs):
        if (v_a[i] is None) != (v_b[i] is None):
            return None
        if v_a[i] is None:
            continue  # a prompt alone with no score carries no weight (e.g. an unscored task)
        if not (-1e-9 <= v_a[i] <= 100 + 1e-9 and -1e-9 <= v_b[i] <= 100 + 1e-9):  # type: ignore[operator]
            return None
        groups[stratum(a[0])].append(i)
    # verdicts to swap in: the stratum's own first, else a sample of the whole dimension's
    pool: dict[str, Verdict] = {}
    for a, b in pairs:
        for v in (a[1], b[1]):
            pool.setdefault(canonical_json(v.to_dict()), v)
    spread = list(pool.values())
    if len(spread) > GLOBAL_CANDIDATES:
        step = len(spread) / GLOBAL_CANDIDATES
        spread = [spread[int(k * step)] for k in range(GLOBAL_CANDIDATES)]

    def weight_of(i: int, candidates: Sequence[Verdict]) -> float | None:
        rec = base[i][0]
        vals = [(score_fn([(rec, v)]), v) for v in candidates]
        vals = [(s, v) for s, v in vals if s is not None]
        if not vals:
            return None
        (s_lo, v_lo), (s_hi, v_hi) = min(vals, key=lambda t: t[0]), max(vals, key=lambda t: t[0])
        if s_hi - s_lo < 1e-9:
            return None
        hi_run, lo_run = list(base), list(base)
        hi_run[i], lo_run[i] = (rec, v_hi), (rec, v_lo)
        t_hi, t_lo = score_fn(hi_run), score_fn(lo_run)
        if t_hi is None or t_lo is None:
            raise _NotLinear
        return (t_hi - t_lo) / (s_hi - s_lo)

    weights: dict[int, float] = {}
    unknown: list[int] = []
    per_item = len(pairs) <= PER_ITEM_LIMIT
    try:
        for key in sorted(groups):
            idx = groups[key]
            own = [x[1] for i in idx for x in (base[i], variant[i])]
            for i in (idx if per_item else idx[:1]):
                w = weight_of(i, own)
                if w is None:
                    w = weight_of(i, spread)
                if w is None:
                    unknown.extend([i] if per_item else idx)
                    continue
                weights.update({i: w} if per_item else {j: w for j in idx})
    except (_NotLinear, Exception):
        return None
    known = sum(weights.values())
    if any(w < -1e-9 for w in weights.values()) or known > 1.0 + 1e-6:
        return None
    if unknown:
        share = max(0.0, 1.0 - known) / len(unknown)
        weights.update({i: share for i in unknown})
    elif abs(known - 1.0) > 1e-6:
        return None
    mixed = [pairs[i][i % 2] for i in range(len(pairs))]
    try:
        t_m = score_fn(mixed)
    except Exception:
        return None
    v_m = [v_a[i] if i % 2 == 0 else v_b[i] for i in range(len(pairs))]
    for total, vals in ((t_a, v_a), (t_b, v_b), (t_m, v_m)):
        rebuilt = sum(w * vals[i] for i, w in weights.items())  # type: ignore[operator]
        if total is None or abs(rebuilt - total) > LINEAR_TOL * max(1.0, abs(total)):
            return None
    strata = tuple(
        (key, tuple((weights[i], float(v_a[i]), float(v_b[i])) for i in groups[key]))  # type: ignore[arg-type]
        for key in sorted(groups)
    )
    return LinearForm(strata)


def jackknife(pairs: Sequence[tuple[Judged, Judged]], score_fn: ScoreFn,
              stratum: StratumFn, *, bias_correct: bool = False) -> JackknifeModel | None:
    """Stratified delete-one jackknife of score(variant) − score(base); None if it cannot be formed.

    `bias_correct` subtracts the jackknife bias estimate; off by default: for max/abs scores such as
    DPD near 0 it over-corrects badly (simulated coverage 0.43 at 20 prompts per stratum).
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (a, _) in enumerate(pairs):
        groups[stratum(a[0])].append(i)
    n = len(pairs)
    if n == 0 or any(len(g) < 2 for g in groups.values()):
        return None

    def diff(keep: Sequence[int]) -> float | None:
        sa = score_fn([pairs[i][0] for i in keep])
        sb = score_fn([pairs[i][1] for i in keep])
        return None if sa is None or sb is None else sb - sa

    full = diff(range(n))
    if full is None:
        return None
    var = bias = 0.0
    df = 0
    for idx in groups.values():
        # delete-a-group jackknife above JACKKNIFE_GROUPS prompts per stratum (Kott 2001): same
        # estimator for small strata, n/JACKKNIFE_GROUPS times fewer re-scorings for large ones
        n_groups = min(len(idx), JACKKNIFE_GROUPS)
        parts = [idx[g::n_groups] for g in range(n_groups)]
        reps = []
        for part in parts:
            drop = set(part)
            d = diff([j for j in range(n) if j not in drop])
            if d is None:
                return None
            reps.append(d)
        m = sum(reps) / len(reps)
        var += (n_groups - 1) / n_groups * sum((r - m) ** 2 for r in reps)
        bias += (n_groups - 1) * (m - full)
        df += n_groups - 1
    center = full - bias if bias_correct else full
    return JackknifeModel(center, math.sqrt(var), max(1, df), n)


def paired_model(pairs: Sequence[tuple[Judged, Judged]], score_fn: ScoreFn, stratum: StratumFn,
                 *, linear: bool = True) -> tuple[PairedModel | None, str]:
    """The interval model for these pairs and, when there is none, the reason in words."""
    if not pairs:
        return None, "no shared prompts"
    if linear:
        form = linearize(pairs, score_fn, stratum)
        if form is not None:
            counts = form.counts()
            if counts:
                return ScoreModel(counts), ""
    jk = jackknife(pairs, score_fn, stratum)
    if jk is None:
        return None, "too few prompts (a stratum has fewer than 2)"
    if jk.df < MIN_JACKKNIFE_DF:
        return None, f"too few prompts ({jk.df} jackknife degrees of freedom; {MIN_JACKKNIFE_DF} needed)"
    return jk, ""
