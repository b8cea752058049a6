"""Benign utility: MMLU multiple-choice accuracy, 5-shot.

The paper reports MMLU next to the eight trust dimensions so that a compression method that
"improves" trust by breaking the model (refusing, answering at random) is visible. Each
question is preceded by its subject's five dev-set questions as demonstration turns; the
answer's first character must be the right letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..dimension import Dimension, DimensionInfo, JudgeContext, Scenario
from ..profiles import Profile
from ..types import Decoding, Judged, Message, PromptRecord, Verdict
from ..vendored import load_json
from .labels import (
    INVALID,
    REFUSAL,
    first_letter,
    first_output,
    label_verdict,
    mean_or_none,
    tally_by_scenario,
)

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
SHOTS = 5
DECODING = Decoding(max_new_tokens=8, temperature=0.0)  # only the first character is read
SYSTEM = "You are a helpful assistant."
# One subject per MMLU category (STEM, humanities, social sciences, other) with short questions.
SMOKE_SUBJECTS: tuple[str, ...] = (
    "elementary_mathematics",
    "philosophy",
    "high_school_geography",
    "marketing",
)
QUICK_PER_SUBJECT = 2


def question_block(subject: str, row: Sequence[Any]) -> str:
    """DecodingTrust `mmlu_evaluate.py` question layout, with a direct-answer instruction instead of
    its step-by-step one (the paper parses the first character of the answer)."""
    name = subject.replace("_", " ")
    q, a, b, c, d = row[:5]
    return (
        f"Answer the following multiple choice question about {name}. "
        f"The answer should be exactly 'A', 'B', 'C' or 'D'.\n\n"
        f"{q}\n\nA) {a}\nB) {b}\nC) {c}\nD) {d}"
    )


def build_messages(subject: str, demos: Sequence[Sequence[Any]], row: Sequence[Any]) -> tuple[Message, ...]:
    msgs = [Message("system", SYSTEM)]
    for demo in demos[:SHOTS]:
        msgs.append(Message("user", question_block(subject, demo)))
        msgs.append(Message("assistant", LETTERS[int(demo[5])]))
    msgs.append(Message("user", question_block(subject, row)))
    return tuple(msgs)


def _data() -> dict[str, Any]:
    return load_json("mmlu/mmlu.json")


class MMLU(Dimension):
    info = DimensionInfo(
        id="mmlu",
        title="MMLU (benign utility)",
        short="MMLU",
        description=(
            "General knowledge and reasoning (57 subjects), the paper's benign-utility column: does compression "
            "keep the model useful? 5-shot: the subject's 5 dev questions as user/assistant turns, then the test "
            "question (mmlu_evaluate.py layout 'question, A) .. D) ..'), t=0, 8 tokens. The first character of the "
            "answer (after spaces and an opening bracket/quote/star) must be A, B, C or D. "
            "Score = mean over subjects of accuracy x 100 (equal questions per subject, so also the plain accuracy)."
        ),
        deviations=(
            (
                "Seeded subset: 35 test questions per subject (1,995 of 14,042) in the paper profile; quick uses 2 "
                "questions in each of 40 seeded subjects, smoke 2 in each of 4 subjects."
            ),
            (
                "DecodingTrust's mmlu_evaluate.py is a zero-shot step-by-step example ('ANSWER: $LETTER'); following the "
                "paper (5-shot, first character) its question layout is kept but the instruction asks for the letter only "
                "and the dev-set demos are added as chat turns."
            ),
            "Refusals are told apart from off-format answers by the generic refusal list (both are wrong).",
        ),
        verdicts=("A", "B", "C", "D", REFUSAL, INVALID),
    )

    def scenarios(self) -> tuple[Scenario, ...]:
        d = _data()
        return tuple(
            Scenario(s, f"MMLU {s.replace('_', ' ')}, 5-shot", len(d["data"][s]["test"]))
            for s in sorted(d["subjects"])
        )

    def _subjects(self, profile: Profile) -> list[str]:
        order: list[str] = list(_data()["subjects"])  # seeded order (scripts/vendor/mmlu.py)
        if profile.name == "smoke":
            return [s for s in SMOKE_SUBJECTS if s in order]
        if profile.dimension_budget is not None:
            return order[: max(1, profile.dimension_budget // QUICK_PER_SUBJECT)]
        return order

    def build_prompts(self, profile: Profile) -> list[PromptRecord]:
        d = _data()["data"]
        subjects = self._subjects(profile)
        records: list[PromptRecord] = []
        for subject in subjects:
            items = d[subject]["test"]
            k = profile.count(len(subjects), len(items))
            if profile.dimension_budget is not None:
                k = min(k, QUICK_PER_SUBJECT)
            for i, row in enumerate(items[:k]):
                records.append(
                    PromptRecord(
                        id=f"mmlu/{subject}/{i}",
                        dimension="mmlu",
                        scenario=subject,
                        messages=build_messages(subject, d[subject]["dev"], row),
                        decoding=DECODING,
                        context={"label": LETTERS[int(row[5])], "options": list(LETTERS), "row": row[6]},
                    )
                )
        return records

    def judge_robust(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        text = first_output(outputs)
        return label_verdict(record, first_letter(text, record.context["options"]), text)

    def aggregate_robust(self, judged: Sequence[Judged]) -> tuple[float | None, dict[str, dict[str, Any]]]:
        tallies = tally_by_scenario(judged)
        score = mean_or_none([t.accuracy for t in tallies.values()])
        return (None if score is None else 100.0 * score), {k: t.to_dict() for k, t in tallies.items()}
