"""MMLU under paper rules: comp-trust's `predict_one_sample` answer parsing, quirks included.

The fixture holds continuations with the prediction the script itself returned for them (run
locally with the model and tokenizer stubbed to produce each continuation).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctrust_tui.trust.dimension import JudgeContext
from ctrust_tui.trust.dimensions.mmlu import MMLU, fork_letter
from ctrust_tui.trust.types import Decoding, Message, PromptRecord

DIM = MMLU()
PAPER = JudgeContext(rules="paper")
ROBUST = JudgeContext(rules="robust")
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "mmlu_fork_cases.json").read_text(encoding="utf-8"))


def _rec(label: str = "B") -> PromptRecord:
    return PromptRecord("mmlu/marketing/0", "mmlu", "marketing", (Message("completion", "Q\nAnswer:"),),
                        Decoding(16), {"label": label, "options": ["A", "B", "C", "D"], "row": 0, "shots": 5})


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: repr(c["output"])[:40])
def test_prediction_matches_the_script(case: dict) -> None:
    pred = fork_letter(case["output"])
    assert pred == case["prediction"]
    v = DIM.judge(_rec(), [case["output"]], PAPER)
    assert v.extra["prediction"] == pred
    assert v.refusal == (pred is None)  # the script's `refs`
    assert v.verdict == (pred if pred is not None else "refusal")
    assert v.correct == (pred == "B")
    assert v.extra["empty"] == case["crash"]  # the script raised IndexError on these


def test_fixture_covers_the_tricky_cases() -> None:
    cases = FIXTURE["cases"]
    assert len(cases) >= 500
    assert any(c["crash"] for c in cases)
    assert {c["prediction"] for c in cases} >= {"A", "B", "C", "D", None}
    assert any(c["output"][:1].islower() and c["prediction"] for c in cases)


@pytest.mark.parametrize(
    ("text", "pred"),
    [
        ("B", "B"),
        ("b", "B"),  # lower-case accepted
        ("B. The answer", "B"),
        ("b) is right", "B"),
        (" B", None),  # no whitespace skipped: byte-level BPE models decode ' B' after 'Answer:'
        ("\nB", None),
        ("(B)", None),
        ("**B**", None),
        ("</s>C", "C"),  # '</s>' removed anywhere before reading
        ("</s>", None),  # empty after removal: the script raises; no answer here
        ("", None),
        ("E", None),
        ("Answer: B", "A"),  # the first character, whatever it means
        ("a good question", "A"),
        ("ǆ", None),  # upper() of the first character is not a letter A-D
    ],
)
def test_first_character_rule(text: str, pred: str | None) -> None:
    assert fork_letter(text) == pred


def test_format_failures_paper_vs_robust() -> None:
    rec = _rec("B")
    paper, robust = DIM.judge(rec, [" B"], PAPER), DIM.judge(rec, [" B"], ROBUST)
    assert paper.verdict == "refusal" and not paper.correct and robust.verdict == "B" and robust.correct
    assert DIM.format_failure(paper, robust)
    paper, robust = DIM.judge(rec, ["b"], PAPER), DIM.judge(rec, ["b"], ROBUST)
    assert paper.correct and robust.verdict == "invalid"  # robust does not take a lone lower-case letter
    assert not DIM.format_failure(paper, robust)


def test_refusal_rate_is_the_scripts_share_without_a_letter() -> None:
    outs = ["B", " B", "c", "I cannot answer", "</s>"]
    judged = [(_rec(), DIM.judge(_rec(), [o], PAPER)) for o in outs]
    res = DIM.result(judged, rules="paper", n_boot=20)
    assert res.refusal_rate == pytest.approx(3 / 5)
    assert res.score == pytest.approx(100 * 1 / 5)  # only 'B' is right; 'c' is C
    assert res.refusal_phrase_rate == pytest.approx(1 / 5)  # the generic phrase share stays separate
