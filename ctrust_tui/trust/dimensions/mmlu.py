"""Benign utility: MMLU multiple-choice accuracy, 5-shot completion, as the paper ran it.

The paper reports MMLU next to the eight trust dimensions so that a compression method that
"improves" trust by breaking the model (refusing, answering at random) is visible. Its numbers
come from comp-trust's `scripts/mmlu_autogptq.py`: Hendrycks' completion prompt ("The following
are multiple choice questions (with answers) about ...", the subject's first 5 dev questions with
their answers, the test question, "Answer:"), no chat template, greedy, 16 new tokens; the answer
is the first character of the decoded continuation, lower-case accepted; the score is the plain
accuracy over all questions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..chat import completion_messages
from ..dimension import Dimension, DimensionInfo, JudgeContext, Scenario
from ..profiles import Profile
from ..types import Decoding, Judged, PromptRecord, Verdict
from ..vendored import load_json
from .labels import INVALID, REFUSAL, first_letter, first_output, label_verdict, tally_by_scenario

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
SHOTS = 5  # mmlu_autogptq.py --ntrain default
CROP_TOKENS = 2048  # Hendrycks' crop.py: fewer shots while the prompt exceeds this many GPT-2 tokens
MAX_NEW_TOKENS = 16
# do_sample with temperature 1e-7 and top_p 1 in the script: greedy in all but exact ties
DECODING = Decoding(max_new_tokens=MAX_NEW_TOKENS, temperature=0.0)
# The script reads the CSVs with pandas (header=None): a cell whose whole text is one of pandas 2's
# default NA strings becomes NaN and is printed "nan". In MMLU only the option "None" does that
# (10 test cells; checked against pandas 2.2.3 over the whole test and dev sets).
PANDAS_NA_CELLS: frozenset[str] = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
# One subject per MMLU category (STEM, humanities, social sciences, other) with short questions.
SMOKE_SUBJECTS: tuple[str, ...] = (
    "elementary_mathematics",
    "philosophy",
    "high_school_geography",
    "marketing",
)
QUICK_ORDER_SEED = "ctrust/mmlu/quick-order/v1"


def format_subject(subject: str) -> str:
    """The script's subject phrase: ' ' before every word, so the header reads 'about  college physics.'"""
    return "".join(" " + part for part in subject.split("_"))


def cell(text: str) -> str:
    """A CSV cell as the script prints it (pandas NA strings -> 'nan')."""
    return "nan" if text in PANDAS_NA_CELLS else text


def format_example(row: Sequence[Any], include_answer: bool = True) -> str:
    """'question\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:' (+ ' X\\n\\n' for a demonstration)."""
    text = cell(row[0]) + "".join(f"\n{letter}. {cell(row[j + 1])}" for j, letter in enumerate(LETTERS))
    text += "\nAnswer:"
    if include_answer:
        text += f" {LETTERS[int(row[5])]}\n\n"
    return text


def paper_prompt(subject: str, dev: Sequence[Sequence[Any]], row: Sequence[Any], shots: int = SHOTS) -> str:
    """The completion prompt of `mmlu_autogptq.py` with `shots` dev demonstrations (file order)."""
    head = f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"
    return head + "".join(format_example(d) for d in dev[:shots]) + format_example(row, include_answer=False)


def fork_letter(text: str) -> str | None:
    """The script's answer: drop '</s>', lower-case, first character upper-cased, kept if A-D.

    No whitespace is skipped: a continuation that starts with a space (byte-level BPE models decode
    ' A' after 'Answer:'; Llama's sentencepiece decode drops that space) has no answer. An empty
    continuation makes the script fail (IndexError); here it has no answer either."""
    low = text.replace("</s>", "").lower()
    if not low:
        return None
    pred = low[0].upper()
    return pred if pred in LETTERS else None


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return load_json("mmlu/mmlu.json")


@lru_cache(maxsize=1)
def _quick_order() -> tuple[tuple[str, int], ...]:
    """Every vendored test question in one seeded order: a prefix is a uniform random sample of
    questions, so its plain accuracy estimates the full set's (subjects weighted by size)."""
    d = _data()
    pairs = [(s, i) for s in d["subjects"] for i in range(len(d["data"][s]["test"]))]
    random.Random(QUICK_ORDER_SEED).shuffle(pairs)
    return tuple(pairs)


class MMLU(Dimension):
    info = DimensionInfo(
        id="mmlu",
        title="MMLU (benign utility)",
        short="MMLU",
        description=(
            "General knowledge and reasoning (57 subjects), the paper's benign-utility column: does compression "
            "keep the model useful? comp-trust's mmlu_autogptq.py protocol: a raw completion prompt (no chat "
            "template) 'The following are multiple choice questions (with answers) about <subject>.' + the "
            "subject's first 5 dev questions ('question\\nA. ..\\nD. ..\\nAnswer: X') + the test question ending "
            "'Answer:'; fewer demonstrations where the prompt exceeds 2,048 GPT-2 tokens (Hendrycks' crop); greedy, "
            "16 new tokens. Paper rules: the first character of the continuation, lower-case accepted, must be A-D "
            "(no letter = the script's 'refusal'). Robust rules skip leading spaces and an opening bracket, quote "
            "or star. Score = accuracy over all questions x 100 (not a mean of subject means)."
        ),
        deviations=(
            (
                "Seeded subset: 2,000 of the 14,042 test questions, allocated to subjects in proportion to their "
                "size (14-218 per subject) so that plain accuracy estimates the full set's; quick takes 80 questions "
                "uniformly at random from it, smoke 2 in each of 4 subjects."
            ),
            (
                "Answer letters follow the tokenizer: the script reads the first decoded character, which for "
                "Llama-2/Vicuna (sentencepiece) is the letter; for byte-level BPE models (SmolLM2, GPT-2, Llama-3) "
                "the continuation starts with a space and paper rules read no answer (robust rules do)."
            ),
            (
                "Shots per question under the 2,048-GPT-2-token crop were computed offline with the GPT-2 BPE "
                "(373 of 14,042 questions, in three history/law subjects) and are stored with the data."
            ),
        ),
        verdicts=(*LETTERS, REFUSAL, INVALID),
    )

    def scenarios(self) -> tuple[Scenario, ...]:
        d = _data()
        return tuple(
            Scenario(s, f"MMLU {s.replace('_', ' ')}, 5-shot completion", len(d["data"][s]["test"]))
            for s in sorted(d["subjects"])
        )

    def _selected(self, profile: Profile) -> list[tuple[str, int]]:
        d = _data()["data"]
        order: list[str] = list(_data()["subjects"])
        if profile.name == "smoke":
            subjects = [s for s in SMOKE_SUBJECTS if s in order]
            return [(s, i) for s in subjects for i in range(profile.count(len(subjects), len(d[s]["test"])))]
        if profile.dimension_budget is not None:
            rank = {s: k for k, s in enumerate(order)}
            return sorted(_quick_order()[: profile.dimension_budget], key=lambda p: (rank[p[0]], p[1]))
        return [(s, i) for s in order for i in range(profile.count(len(order), len(d[s]["test"])))]

    def build_prompts(self, profile: Profile) -> list[PromptRecord]:
        d = _data()["data"]
        records: list[PromptRecord] = []
        for subject, i in self._selected(profile):
            row = d[subject]["test"][i]
            shots = int(row[7])
            records.append(
                PromptRecord(
                    id=f"mmlu/{subject}/{i}",
                    dimension="mmlu",
                    scenario=subject,
                    messages=completion_messages(paper_prompt(subject, d[subject]["dev"], row, shots)),
                    decoding=DECODING,
                    context={"label": LETTERS[int(row[5])], "options": list(LETTERS), "row": row[6], "shots": shots},
                )
            )
        return records

    def judge_paper(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        """`pred = outputs[0].upper()` of the script: a letter, or None, which it counts as a refusal
        (its `refs`), wrong either way."""
        text = first_output(outputs)
        pred = fork_letter(text)
        return Verdict(
            verdict=pred if pred is not None else REFUSAL,
            refusal=pred is None,
            correct=pred is not None and pred == record.context["label"],
            extra={"prediction": pred, "empty": not text.replace("</s>", "")},
        )

    def judge_robust(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        """First letter after leading whitespace and one of `( [ " ' *` (a chat-tuned model answers
        ' B', '(B)' or '**B**'); upper case only, since a lone 'a' is usually the article ('a
        mammal'); no letter -> `refusal` if a generic refusal phrase occurs, else `invalid`."""
        text = first_output(outputs)
        return label_verdict(record, first_letter(text, record.context["options"]), text)

    def aggregate_robust(self, judged: Sequence[Judged]) -> tuple[float | None, dict[str, dict[str, Any]]]:
        """Accuracy over all questions x 100 (the script's `np.mean(np.concatenate(all_cors))`), under
        both rule sets, so the two scores differ only by parsing; per-subject metrics alongside."""
        if not judged:
            return None, {}
        tallies = tally_by_scenario(judged)
        score = 100.0 * sum(1 for _, v in judged if v.correct) / len(judged)
        return score, {k: t.to_dict() for k, t in tallies.items()}
