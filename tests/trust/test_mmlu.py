"""MMLU: 5-shot layout with the subject's dev questions, first-letter parsing, subject-mean score."""

from __future__ import annotations

import json

from ctrust_tui.trust.dimension import JudgeContext
from ctrust_tui.trust.dimensions.mmlu import MMLU, SMOKE_SUBJECTS, build_messages, question_block
from ctrust_tui.trust.profiles import get_profile
from ctrust_tui.trust.types import Message, PromptRecord
from ctrust_tui.trust.vendored import load_json

DIM = MMLU()
CTX = JudgeContext(rules="robust")


def test_counts_per_profile() -> None:
    assert len(DIM.scenarios()) == 57
    smoke = DIM.build_prompts(get_profile("smoke"))
    assert len(smoke) == 8 and {r.scenario for r in smoke} == set(SMOKE_SUBJECTS)
    quick = DIM.build_prompts(get_profile("quick"))
    assert len(quick) == 80 and len({r.scenario for r in quick}) == 40
    paper = DIM.build_prompts(get_profile("paper"))
    assert len(paper) == 57 * 35
    for r in paper[::41]:
        assert r.context["label"] in r.context["options"] == ["A", "B", "C", "D"]
        assert PromptRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_question_block_and_five_shot_layout() -> None:
    row = ["What is 1+1?", "1", "2", "3", "4", 1, 0]
    assert question_block("college_mathematics", row) == (
        "Answer the following multiple choice question about college mathematics. "
        "The answer should be exactly 'A', 'B', 'C' or 'D'.\n\nWhat is 1+1?\n\nA) 1\nB) 2\nC) 3\nD) 4"
    )
    demos = load_json("mmlu/mmlu.json")["data"]["marketing"]["dev"]
    msgs = build_messages("marketing", demos, row)
    assert msgs[0] == Message("system", "You are a helpful assistant.")
    assert len(msgs) == 1 + 2 * 5 + 1
    assert msgs[2] == Message("assistant", "ABCD"[demos[0][5]])
    assert msgs[1].content == question_block("marketing", demos[0])


def test_judge_and_score() -> None:
    recs = DIM.build_prompts(get_profile("smoke"))
    judged = []
    for i, r in enumerate(recs):
        gold = r.context["label"]
        wrong = next(x for x in "ABCD" if x != gold)
        # subject 0: 2/2, subject 1: 1/2, subject 2: 0/2 (wrong + refusal), subject 3: 1/2 ('(X)' + invalid)
        reply = [f" {gold}) yes", f"{gold}", f"{gold}.", wrong, wrong, "Sorry, I cannot", f"({gold})", "b"][i]
        judged.append((r, DIM.judge(r, [reply], CTX)))
    assert judged[5][1].verdict == "refusal" and judged[5][1].refusal
    assert judged[7][1].verdict == "invalid"
    score, metrics = DIM.aggregate(judged, "robust")
    assert score == 100.0 * (1.0 + 0.5 + 0.0 + 0.5) / 4
    assert metrics[recs[4].scenario]["accuracy"] == 0.0
