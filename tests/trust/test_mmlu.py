"""MMLU: comp-trust's completion prompt, proportional subset, robust first-letter parsing, plain accuracy."""

from __future__ import annotations

import json
from collections import Counter

from ctrust_tui.trust.chat import COMPLETION_ROLE, completion_text, render_plain
from ctrust_tui.trust.dimension import JudgeContext
from ctrust_tui.trust.dimensions.mmlu import (
    MMLU,
    SMOKE_SUBJECTS,
    cell,
    format_example,
    format_subject,
    paper_prompt,
)
from ctrust_tui.trust.profiles import get_profile
from ctrust_tui.trust.types import PromptRecord
from ctrust_tui.trust.vendored import load_json

DIM = MMLU()
CTX = JudgeContext(rules="robust")
DATA = load_json("mmlu/mmlu.json")


def test_counts_per_profile() -> None:
    assert len(DIM.scenarios()) == 57
    smoke = DIM.build_prompts(get_profile("smoke"))
    assert len(smoke) == 8 and {r.scenario for r in smoke} == set(SMOKE_SUBJECTS)
    quick = DIM.build_prompts(get_profile("quick"))
    assert len(quick) == 80 and len({r.id for r in quick}) == 80
    paper = DIM.build_prompts(get_profile("paper"))
    assert len(paper) == 2000
    for r in paper[::41]:
        assert r.context["label"] in r.context["options"] == ["A", "B", "C", "D"]
        assert PromptRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    # quick is a subset of paper (same ids, same prompts), so quick and paper runs share cached outputs
    by_id = {r.id: r for r in paper}
    assert all(by_id[r.id] == r for r in quick)


def test_subset_is_proportional_to_subject_size() -> None:
    counts, sizes = DATA["test_counts"], {s: len(DATA["data"][s]["test"]) for s in DATA["subjects"]}
    assert sum(counts.values()) == 14042 and sum(sizes.values()) == 2000
    for s in sizes:
        assert abs(sizes[s] - counts[s] * 2000 / 14042) < 1  # largest-remainder allocation
    assert sizes["professional_law"] == 218 and min(sizes.values()) == 14
    # quick's 80 are a uniform sample of questions: big subjects show up more often
    quick = Counter(r.scenario for r in DIM.build_prompts(get_profile("quick")))
    assert len(quick) > 20 and quick["professional_law"] >= 3


def test_completion_prompt_layout() -> None:
    row = ["What is 1+1?", "1", "2", "3", "4", 1, 0, 5]
    assert format_subject("college_mathematics") == " college mathematics"
    assert format_example(row) == "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
    assert format_example(row, include_answer=False) == "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"
    dev = DATA["data"]["marketing"]["dev"]
    prompt = paper_prompt("marketing", dev, row)
    assert prompt.startswith("The following are multiple choice questions (with answers) about  marketing.\n\n")
    assert prompt.endswith("\n\nWhat is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:")
    assert prompt.count("\nAnswer: ") == 5 and prompt.count("\nAnswer:") == 6
    assert paper_prompt("marketing", dev, row, shots=2).count("\nAnswer: ") == 2
    # pandas prints an option 'None' as 'nan' in the script's prompt
    assert cell("None") == "nan" and cell("none") == "none" and cell("0") == "0"
    assert format_example(["Q", "None", "x", "y", "z", 0, 0, 5]).startswith("Q\nA. nan\nB. x")


def test_records_are_raw_completion_prompts() -> None:
    rec = DIM.build_prompts(get_profile("smoke"))[0]
    assert len(rec.messages) == 1 and rec.messages[0].role == COMPLETION_ROLE
    text = completion_text(rec.messages)
    assert text is not None and text.endswith("\nAnswer:")
    assert render_plain(rec.messages) == text  # no role labels, no 'Assistant:' suffix
    assert rec.decoding.max_new_tokens == 16 and rec.decoding.greedy and rec.decoding.n == 1


def test_cropped_questions_get_fewer_shots() -> None:
    paper = DIM.build_prompts(get_profile("paper"))
    shots = Counter(r.context["shots"] for r in paper)
    assert shots[5] > 1900 and set(shots) <= {2, 3, 4, 5} and len(shots) > 1
    short = next(r for r in paper if r.context["shots"] < 5)
    assert short.scenario in {"high_school_european_history", "high_school_us_history", "professional_law"}
    assert completion_text(short.messages).count("\nAnswer: ") == short.context["shots"]


def test_robust_judge_and_plain_accuracy() -> None:
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
    assert score == 100.0 * 4 / 8
    assert metrics[recs[4].scenario]["accuracy"] == 0.0


def test_score_is_accuracy_over_questions_not_mean_of_subjects() -> None:
    recs = DIM.build_prompts(get_profile("paper"))
    law = [r for r in recs if r.scenario == "professional_law"][:3]
    alg = [r for r in recs if r.scenario == "abstract_algebra"][:1]
    for rules in ("robust", "paper"):
        ctx = JudgeContext(rules=rules)
        judged = [(r, DIM.judge(r, [r.context["label"]], ctx)) for r in law]
        judged += [(r, DIM.judge(r, ["none"], ctx)) for r in alg]
        assert DIM.aggregate(judged, rules)[0] == 75.0  # 3 of 4 questions; the subject mean would be 50
