"""Format-failure shares and the exact split of a paired paper delta (toy accuracy dimension)."""

from __future__ import annotations

from typing import Sequence

import pytest

from ctrust_tui.trust.dimension import Dimension, DimensionInfo, JudgeContext
from ctrust_tui.trust.format_failures import format_share, format_split
from ctrust_tui.trust.types import Decoding, Message, PromptRecord, Verdict


class Toy(Dimension):
    """Accuracy; paper wants the bare label, robust also reads 'This is <label>.'."""

    info = DimensionInfo("toy", "Toy", "Toy", "test dimension")

    def scenarios(self):
        return ()

    def build_prompts(self, profile):
        return []

    def _read(self, out: str, strict: bool) -> str:
        text = out.strip().lower()
        if strict:
            return text if text in ("yes", "no") else "invalid"
        for label in ("yes", "no"):
            if text in (label, f"this is {label}."):
                return label
        return "invalid"

    def judge_paper(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        v = self._read(outputs[0], True)
        return Verdict(v, refusal=v == "invalid", correct=v == record.context["label"])

    def judge_robust(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        v = self._read(outputs[0], False)
        return Verdict(v, refusal=v == "invalid", correct=v == record.context["label"])

    def aggregate_robust(self, judged):
        if not judged:
            return None, {}
        return 100.0 * sum(bool(v.correct) for _, v in judged) / len(judged), {}


DIM = Toy()


def _run(outputs: list[str]) -> dict[str, list]:
    recs = [PromptRecord(f"toy/s/{i}", "toy", "s", (Message("user", "q"),), Decoding(4), {"label": "yes"})
            for i in range(len(outputs))]
    return {rules: [(r, DIM.judge(r, [o], JudgeContext(rules=rules))) for r, o in zip(recs, outputs)]
            for rules in ("paper", "robust")}


def test_judge_adds_generic_refusal_phrase_share_under_both_rule_sets():
    rec = PromptRecord("toy/s/0", "toy", "s", (Message("user", "q"),), Decoding(4, n=2), {"label": "yes"})
    for rules in ("paper", "robust"):
        v = DIM.judge(rec, ["I'm sorry, I cannot", "yes"], JudgeContext(rules=rules))
        assert v.extra["refusal_phrase"] == 0.5


def test_unknown_rule_set_is_one_clear_error():
    from ctrust_tui.errors import CtrustError

    with pytest.raises(CtrustError, match="unknown rule set 'strict'; choose from: paper, robust"):
        DIM.aggregate([], "strict")


def test_format_share_counts_outputs_only_robust_can_read():
    run = _run(["yes", "This is yes.", "This is no.", "maybe"])
    share = format_share(DIM, run["paper"], run["robust"])
    assert share.n == 4 and share.share == pytest.approx(0.5)


def test_split_is_additive_and_attributes_format_loss():
    base = _run(["yes", "yes", "no", "yes", "yes", "no"])        # paper 66.7
    variant = _run(["This is yes.", "This is yes.", "no", "yes", "no", "no"])  # paper 16.7, repaired 50.0
    sp = format_split(DIM, base, variant, n_boot=200)
    assert sp.delta == pytest.approx(16.6667 - 66.6667, abs=1e-3)
    assert sp.answers == pytest.approx(50.0 - 66.6667, abs=1e-3)   # one answer really changed (yes -> no)
    assert sp.formats == pytest.approx(-33.3333, abs=1e-3)         # two right answers only lost their format
    assert sp.answers + sp.formats == pytest.approx(sp.delta)
    assert sp.share_a == 0.0 and sp.share_b == pytest.approx(2 / 6)
    lo, hi = sp.ci_formats
    assert lo <= sp.formats <= hi and hi <= 0.0


def test_split_without_format_failures_puts_everything_in_changed_answers():
    base = _run(["yes", "yes", "yes", "no"])
    variant = _run(["no", "yes", "no", "no"])
    sp = format_split(DIM, base, variant, n_boot=50)
    assert sp.formats == 0.0 and sp.answers == sp.delta == pytest.approx(-50.0)
    assert sp.ci_formats == (0.0, 0.0)


def _one_per_scenario(outputs: list[str]) -> dict[str, list]:
    recs = [PromptRecord(f"toy/s{i}/0", "toy", f"s{i}", (Message("user", "q"),), Decoding(4), {"label": "yes"})
            for i in range(len(outputs))]
    return {rules: [(r, DIM.judge(r, [o], JudgeContext(rules=rules))) for r, o in zip(recs, outputs)]
            for rules in ("paper", "robust")}


def test_split_intervals_pool_one_prompt_scenarios_instead_of_freezing():
    """`--limit 36` on quick OOD gives 36 one-prompt scenarios: resampling each alone kept every prompt and
    froze the split's bootstrap interval at its point (the OOD delta read -21.7 [-21.7, -21.7])."""
    base = _one_per_scenario(["yes"] * 24 + ["no"] * 12)
    variant = _one_per_scenario(["yes"] * 12 + ["This is yes."] * 12 + ["no"] * 12)
    sp = format_split(DIM, base, variant, n_boot=300)
    assert sp.delta == pytest.approx(-100 / 3) and sp.answers == pytest.approx(0.0)
    assert sp.formats == pytest.approx(-100 / 3)
    lo, hi = sp.ci_formats
    assert hi - lo > 10 and lo < sp.formats < hi


def test_delta_and_changed_answers_carry_the_verdicts_paired_interval():
    """The same interval `ctrust compare` gives the delta (and the non-inferiority verdict uses): at n = 36
    the percentile bootstrap was narrower (AdvGLUE: [-33.3, -2.8] beside the verdict's [-35.2, +2.4])."""
    from ctrust_tui.trust.stats import paired_compare

    base = _run(["yes"] * 24 + ["no"] * 12)
    variant = _run(["yes"] * 12 + ["This is yes."] * 6 + ["no"] * 18)
    sp = format_split(DIM, base, variant, n_boot=200)

    def score(j):
        return DIM.score_only(j, "paper")

    want = paired_compare("toy", base["paper"], variant["paper"], score, linear=DIM.score_is_mean).ci95
    assert want is not None and sp.ci_delta == want
    repaired = [(r, DIM.repair(p, rb) if DIM.format_failure(p, rb) else p)
                for (r, p), (_, rb) in zip(variant["paper"], variant["robust"])]
    assert sp.ci_answers == paired_compare("toy", base["paper"], repaired, score, linear=DIM.score_is_mean).ci95
