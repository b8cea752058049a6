"""Per-run bootstrap intervals with one prompt per scenario (what `--limit` at the scenario count gives)."""

from __future__ import annotations

from ctrust_tui.trust.stats import bootstrap_ci
from ctrust_tui.trust.types import Decoding, Message, PromptRecord, Verdict


def _judged(scenarios: list[str], correct: list[bool]):
    return [(PromptRecord(f"d/{s}/{i}", "d", s, (Message("user", "q"),), Decoding(max_new_tokens=8)), Verdict("x", correct=c))
            for i, (s, c) in enumerate(zip(scenarios, correct))]


def _accuracy(judged) -> float:
    return 100.0 * sum(bool(v.correct) for _, v in judged) / len(judged)


def _all_scenarios_mean(expected: int):
    def score(judged):  # the paper's rule for OOD/AdvDemo/toxicity: no score while a scenario is missing
        per: dict[str, list[bool]] = {}
        for rec, v in judged:
            per.setdefault(rec.scenario, []).append(bool(v.correct))
        if len(per) < expected:
            return None
        return 100.0 * sum(sum(x) / len(x) for x in per.values()) / len(per)
    return score


def test_singleton_strata_are_pooled_not_frozen():
    scen = [f"s{i}" for i in range(36)]
    judged = _judged(scen, [i % 3 == 0 for i in range(36)])
    lo, hi = bootstrap_ci(judged, _accuracy, n_boot=400)
    assert hi - lo > 10  # the old stratified resample kept every prompt: [33.3, 33.3]
    assert lo < _accuracy(judged) < hi


def test_strata_of_two_or_more_are_still_resampled_within_themselves():
    scen = ["a"] * 10 + ["b"] * 10
    judged = _judged(scen, [True] * 10 + [False] * 10)
    assert bootstrap_ci(judged, _accuracy, n_boot=200) == (50.0, 50.0)  # each scenario is constant


def test_no_interval_when_pooled_resamples_lose_scenarios_the_score_needs():
    scen = [f"s{i}" for i in range(36)]
    judged = _judged(scen, [i % 2 == 0 for i in range(36)])
    assert bootstrap_ci(judged, _all_scenarios_mean(36), n_boot=200) is None
