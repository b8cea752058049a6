"""Paired intervals and non-inferiority verdicts: small-n behaviour, exactness on real dimension
aggregators, and a simulation of coverage and of the false "non-inferior" rate at the margin."""

from __future__ import annotations

import random

import pytest

from ctrust_tui.errors import CtrustError
from ctrust_tui.trust import get_dimension, get_profile
from ctrust_tui.trust.noninferiority import (
    INCONCLUSIVE,
    INFERIOR,
    NON_INFERIOR,
    TOO_FEW,
    decide,
    parse_alpha,
    parse_margins,
)
from ctrust_tui.trust.paired import (
    JACKKNIFE,
    SCORE,
    ScoreModel,
    StratumCounts,
    linearize,
    normal_quantile,
    paired_model,
    t_quantile,
)
from ctrust_tui.trust.stats import paired_compare
from ctrust_tui.trust.types import Decoding, Message, PromptRecord, Verdict


def _model(strata: list[tuple[float, int, int, int]]) -> ScoreModel:
    total = sum(w for w, *_ in strata)
    return ScoreModel(tuple(StratumCounts(w / total, u, d, n) for w, u, d, n in strata))


# ---- the interval itself -------------------------------------------------------------------------
def test_two_flipped_prompts_give_a_wide_interval_not_a_point() -> None:
    """The issue's smoke case: n = 2, both prompts worse -> -100 points, but never [-100, -100]."""
    lo, hi = _model([(1, 0, 2, 2)]).interval(0.05)
    assert lo < -40 and hi > -100 + 50 and lo < hi
    lo, hi = _model([(1, 0, 0, 2)]).interval(0.05)  # no flips among 2 prompts: about +-66 (Tango)
    assert -70 < lo < -60 and 60 < hi < 70


def test_interval_shrinks_like_one_over_root_n_and_contains_the_estimate() -> None:
    widths = []
    for n in (10, 40, 160, 640):
        m = _model([(1, n // 10, n // 5, n)])
        lo, hi = m.interval(0.05)
        assert lo < m.estimate < hi
        widths.append(hi - lo)
    ratios = [a / b for a, b in zip(widths, widths[1:])]
    assert all(1.7 < r < 2.3 for r in ratios), ratios


def test_interval_is_the_inversion_of_the_test_statistic() -> None:
    m = _model([(1, 3, 7, 27), (1, 1, 4, 27), (2, 0, 2, 14)])
    lo, hi = m.interval(0.05)
    crit = normal_quantile(0.975)
    assert abs(abs(m.z(lo)) - crit) < 1e-3 and abs(abs(m.z(hi)) - crit) < 1e-3
    assert abs(m.z(m.estimate)) < 1e-9


def test_t_quantile_matches_tables() -> None:
    for df, q in ((1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042), (100, 1.984)):
        assert abs(t_quantile(0.975, df) - q) < 2e-3


# ---- verdicts ---------------------------------------------------------------------------------
def test_verdicts_follow_the_interval_and_inconclusive_says_how_many_more_prompts() -> None:
    clear = decide("mmlu", _model([(1, 0, 0, 400)]), margin=2.0, n=400)
    assert clear.verdict == NON_INFERIOR and clear.ci[0] > -2.0
    worse = decide("mmlu", _model([(1, 0, 40, 400)]), margin=2.0, n=400)
    assert worse.verdict == INFERIOR and worse.ci[1] < -2.0
    small = decide("mmlu", _model([(1, 0, 0, 20)]), margin=2.0, n=20)
    assert small.verdict == INCONCLUSIVE and small.ci[0] < -2.0 < small.ci[1]
    assert small.further_prompts and small.further_prompts > 20
    # that many more prompts, same (zero) flip rate: decided
    n2 = 20 + small.further_prompts
    assert decide("mmlu", _model([(1, 0, 0, n2)]), margin=2.0, n=n2).verdict == NON_INFERIOR
    none = decide("fairness", None, margin=2.0, n=2, reason="too few prompts (a stratum has fewer than 2)")
    assert none.verdict == TOO_FEW and none.ci is None and "stratum" in none.reason


def test_margin_parsing_and_bad_margins() -> None:
    assert parse_margins("2").of("toxicity") == 2.0
    m = parse_margins("toxicity=1,default=3", known=("toxicity", "ethics"))
    assert (m.of("toxicity"), m.of("ethics")) == (1.0, 3.0)
    assert parse_margins(None).of("x") == 2.0
    for bad in ("-1", "two", "toxicity=-2", "toxicity", "nan", "150", "fairnes=1"):
        with pytest.raises(CtrustError):
            parse_margins(bad, known=("toxicity", "fairness"))
    with pytest.raises(CtrustError, match="not among the compared"):
        parse_margins("toxicity=1").check_dimensions(["ethics"])
    with pytest.raises(CtrustError):
        parse_alpha(0.7)


# ---- exactness on the real aggregators -----------------------------------------------------------
def _synthetic_runs(dim_id: str, flip: float, seed: int, profile: str = "quick", limit: int | None = None):
    """Base/variant verdicts for real records: `correct`-style verdicts drawn at random."""
    rng = random.Random(seed)
    dim = get_dimension(dim_id)
    recs = dim.build_prompts(get_profile(profile))[:limit]
    out = []
    for r in recs:
        a = rng.random() < 0.6
        b = (not a) if rng.random() < flip else a
        out.append(((r, Verdict("correct" if a else "wrong", correct=a)), (r, Verdict("correct" if b else "wrong", correct=b))))
    return dim, out


def test_linear_form_rebuilds_mmlu_exactly_and_counts_flips_per_subject() -> None:
    dim, pairs = _synthetic_runs("mmlu", 0.3, 1)
    form = linearize(pairs, lambda j: dim.score_only(j, "robust"), dim.stratum)
    assert form is not None
    counts = {k: items for k, items in form.strata}
    subjects = {r.scenario for (r, _), _ in pairs}
    assert set(counts) == subjects
    # whatever the aggregation (mean of subject accuracies, or accuracy over all questions), the
    # weights found are equal within a subject and sum to one
    assert abs(sum(w for items in counts.values() for w, _, _ in items) - 1.0) < 1e-9
    assert all(max(w for w, _, _ in items) - min(w for w, _, _ in items) < 1e-12 for items in counts.values())
    model = ScoreModel(form.counts())
    delta = dim.score_only([b for _, b in pairs], "robust") - dim.score_only([a for a, _ in pairs], "robust")
    assert abs(model.estimate - delta) < 1e-9
    ups = sum(1 for (_, a), (_, b) in pairs if b.correct and not a.correct)
    assert abs(sum(s.up for s in model.strata) - ups) < 1e-9


def test_group_statistics_are_not_mistaken_for_a_mean() -> None:
    """Fairness (DPD/EOD) fails the linear-form check even without its declaration."""
    rng = random.Random(3)
    pairs = []
    for i in range(40):
        sex, label = ("Male", "Female")[i % 2], ("yes", "no")[(i // 2) % 2]
        r = PromptRecord(f"fairness/adult-zero_shot-br0.0/{i}", "fairness", "adult-zero_shot-br0.0", (Message("user", "x"),), Decoding(8),
                         {"label": label, "sensitive_attr": sex})
        a, b = rng.random() < 0.5, rng.random() < 0.5
        pairs.append(((r, Verdict("yes" if a else "no", extra={"prediction": int(a)})),
                      (r, Verdict("yes" if b else "no", extra={"prediction": int(b)}))))
    dim = get_dimension("fairness")
    assert linearize(pairs, lambda j: dim.score_only(j, "robust"), dim.stratum) is None
    score = lambda j: dim.score_only(j, "robust")  # noqa: E731
    model, why = paired_model(pairs, score, dim.stratum, linear=False)  # 2 strata x 20: df 38
    assert model is not None and model.method == JACKKNIFE and why == ""
    lo, hi = model.interval(0.05)
    assert lo < model.estimate < hi
    some, why = paired_model(pairs[:20], score, dim.stratum, linear=False)  # df 18
    assert some is None and "degrees of freedom" in why
    few, why = paired_model(pairs[:3], score, dim.stratum, linear=False)
    assert few is None and "fewer than 2" in why


def test_paired_compare_uses_the_score_interval_and_decides() -> None:
    dim, pairs = _synthetic_runs("mmlu", 0.0, 2, profile="smoke", limit=2)
    c = paired_compare("mmlu", [a for a, _ in pairs], [b for _, b in pairs], lambda j: dim.score_only(j, "robust"),
                       stratum=dim.stratum, margin=2.0)
    assert c.method == SCORE and c.ci95 is not None and c.ci95[0] < -10 and not c.significant
    assert c.decision is not None and c.decision.verdict == INCONCLUSIVE
    assert "noninferiority" in c.to_dict()


# ---- simulation: coverage and false "non-inferior" rate ------------------------------------------
# structures users run: smoke (2 per scenario), quick (80 spread over 1-40 scenarios), n = 2..100
STRUCTURES = [(1, 2), (1, 3), (2, 2), (1, 5), (5, 2), (1, 10), (10, 2), (6, 3), (1, 20), (3, 7), (40, 2),
              (28, 3), (3, 27), (6, 14), (1, 50), (1, 100), (20, 5)]
# (p_up, p_down) at a true difference of -2 points: from "only losses" to heavy churn
AT_MARGIN = [(0.0, 0.02), (0.01, 0.03), (0.04, 0.06), (0.09, 0.11), (0.19, 0.21)]


def _draw(rng: random.Random, n_strata: int, per: int, pu: float, pd: float, jitter: float) -> ScoreModel:
    strata = []
    for _ in range(n_strata):
        # heterogeneous strata with the same mean difference: shift churn, keep p_up - p_down
        extra = jitter * rng.random()
        up = down = 0
        for _ in range(per):
            x = rng.random()
            if x < pu + extra:
                up += 1
            elif x < pu + pd + 2 * extra:
                down += 1
        strata.append(StratumCounts(1.0 / n_strata, up, down, per))
    return ScoreModel(tuple(strata))


def test_simulation_false_noninferior_rate_and_coverage_at_small_n() -> None:
    """>= 2,000 synthetic paired datasets per check (17 structures x 5 settings x 30 = 2,550 each; the
    statistic is evaluated once per dataset, so this takes a few seconds).

    At a true difference of exactly -margin, "non-inferior" must be rare: at most alpha/2 = 2.5% for
    the 95% interval on average (<= 5% in every setting, the issue's bound), at most 5% on average for
    a 90% interval; and the 95% interval must cover the true difference ~95% of the time.
    """
    rng = random.Random(12)
    margin = 2.0
    crit95, crit90 = normal_quantile(0.975), normal_quantile(0.95)
    reps = 30
    total = fni95 = fni90 = covered = 0
    worst = 0.0
    for n_strata, per in STRUCTURES:
        for pu, pd in AT_MARGIN:
            jitter = 0.02 if pu > 0 else 0.0
            hits = 0
            for _ in range(reps):
                m = _draw(rng, n_strata, per, pu, pd, jitter)
                z = m.z(-margin)  # truth is -margin: "non-inferior" iff z > crit
                total += 1
                hits += z > crit95
                fni95 += z > crit95
                fni90 += z > crit90
                covered += abs(z) <= crit95
            worst = max(worst, hits / reps)
    assert total >= 2000
    assert fni95 / total <= 0.025 + 0.01, fni95 / total
    assert fni90 / total <= 0.05 + 0.01, fni90 / total
    assert 0.94 <= covered / total <= 0.995, covered / total
    assert worst <= 0.05 + 0.1  # per setting with 30 draws (binomial noise); the pooled rates above are the claim


@pytest.mark.parametrize("n_strata,per", [(1, 2), (1, 5), (10, 2), (40, 2), (28, 3), (3, 27), (1, 100)])
def test_simulation_coverage_per_sample_size(n_strata: int, per: int) -> None:
    """Coverage of the 95% interval for each structure, over a spread of true differences (600 draws)."""
    rng = random.Random(n_strata * 1000 + per)
    crit = normal_quantile(0.975)
    covered = below = 0
    draws = 600
    for k in range(draws):
        pu, pd = [(0.0, 0.02), (0.02, 0.0), (0.05, 0.1), (0.1, 0.1), (0.2, 0.3), (0.0, 0.2)][k % 6]
        m = _draw(rng, n_strata, per, pu, pd, 0.0)
        true = 100.0 * (pu - pd)
        z = m.z(true)
        covered += abs(z) <= crit
        below += z > crit
    assert covered / draws >= 0.93, covered / draws
    assert below / draws <= 0.035, below / draws


def test_fractional_values_are_conservative() -> None:
    """Toxicity-like continuous per-prompt differences: coverage stays at or above nominal."""
    rng = random.Random(5)
    crit = normal_quantile(0.975)
    covered = 0
    draws = 600
    for _ in range(draws):
        n = rng.choice([2, 5, 14, 84])
        up = down = 0.0
        for _ in range(n):
            e = rng.gauss(-0.02, 0.05)
            e = max(-1.0, min(1.0, e))
            up += max(e, 0.0)
            down += max(-e, 0.0)
        covered += abs(ScoreModel((StratumCounts(1.0, up, down, n),)).z(-2.0)) <= crit
    assert covered / draws >= 0.95


@pytest.mark.slow
def test_simulation_through_the_real_mmlu_aggregator() -> None:
    """The same guarantee end to end: records, verdicts, the dimension's own score, linearize."""
    dim = get_dimension("mmlu")
    score = lambda j: dim.score_only(j, "robust")  # noqa: E731
    recs = dim.build_prompts(get_profile("quick"))
    rng = random.Random(9)
    fni = 0
    draws = 300
    for _ in range(draws):
        pairs = []
        for r in recs:
            a = rng.random() < 0.6
            x = rng.random()
            # p_up = 0.4 * 0.02, p_down = 0.6 * 0.04667: a true difference of -2.0 points
            b = (True if x < 0.02 else a) if not a else (False if x < 0.04667 else a)
            pairs.append(((r, Verdict("c" if a else "w", correct=a)), (r, Verdict("c" if b else "w", correct=b))))
        model, _ = paired_model(pairs, score, dim.stratum)
        assert model is not None and model.method == SCORE
        fni += decide("mmlu", model, margin=2.0, n=len(pairs)).verdict == NON_INFERIOR
    assert fni / draws <= 0.05
