"""Vendor MMLU: every subject's 5 dev questions (the 5-shot demos) and a proportional test sample.

The full test set (14,042 questions, 6.4 MB) exceeds the package data budget. The paper's score is
the plain accuracy over all questions, so subjects weigh by size: 2,000 test questions are
allocated to subjects in proportion to their test counts (largest remainder; 14 to 218 each), so
the plain accuracy over the sample estimates the full set's. Each test row also stores how many
demonstrations comp-trust's script keeps for it (fewer than 5 where the prompt exceeds 2,048 GPT-2
tokens; table in mmlu_gpt2_shots.json, made by scripts/mmlu_gpt2_shots.py). Subjects are stored in
a seeded order and each subject's test items in a seeded order.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

SEED = "ctrust/mmlu/v1"
TOTAL = 2000
SHOTS = 5
GPT2_SHOTS = Path(__file__).with_name("mmlu_gpt2_shots.json")

ATTRIBUTION = """\
MMLU (Hendrycks et al., "Measuring Massive Multitask Language Understanding", ICLR 2021), MIT licence
(see LICENSE in this folder; https://github.com/hendrycks/test).
Copied from github.com/HaeChan0305/MLILAB-FedLLM commit d92730e8bacd7b3a61e551e015e40588e10234b4,
data/mmlu/{dev,test}/<subject>_{dev,test}.csv (HF cais/mmlu export: answer is an int 0-3).
Modified subset by scripts/vendor/mmlu.py (seed "ctrust/mmlu/v1"): all 5 dev rows per subject (the
5-shot demonstrations, in file order) as [question, A, B, C, D, answer_index, row], and 2,000 seeded
test rows allocated to subjects in proportion to their size (14-218 of 100-1,534), as
[question, A, B, C, D, answer_index, row, shots] (shots: demonstrations that fit comp-trust's
2,048-GPT-2-token crop); subjects and test rows in seeded order; "test_counts" = full test sizes.
"""

LICENSE = """\
MIT License

Copyright (c) 2020 Dan Hendrycks

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def _rows(path: Path) -> list[list]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        assert header == ["question", "choice0", "choice1", "choice2", "choice3", "answer"], header
        return [[*r[:5], int(r[5]), i] for i, r in enumerate(reader)]


def allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Largest-remainder proportional allocation of `total` (ties broken by subject name)."""
    n = sum(sizes.values())
    base = {s: sizes[s] * total // n for s in sizes}
    order = sorted(sizes, key=lambda s: (-(sizes[s] * total % n), s))
    for s in order[: total - sum(base.values())]:
        base[s] += 1
    return base


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "mmlu"
    subjects = sorted(p.name.removesuffix("_test.csv") for p in (src / "test").glob("*_test.csv"))
    tests = {s: _rows(src / "test" / f"{s}_test.csv") for s in subjects}
    counts = {s: len(rows) for s, rows in tests.items()}
    take = allocate(counts, TOTAL)
    cropped = json.loads(GPT2_SHOTS.read_text(encoding="utf-8"))["shots"]
    random.Random(f"{SEED}/subjects").shuffle(subjects)
    data = {}
    for subject in subjects:
        dev = _rows(src / "dev" / f"{subject}_dev.csv")
        test = tests[subject]
        random.Random(f"{SEED}/{subject}").shuffle(test)
        shots = cropped.get(subject, {})
        data[subject] = {
            "dev": dev,
            "test": [[*r, shots.get(str(r[6]), SHOTS)] for r in test[: take[subject]]],
        }
    out_dir = root / "ctrust_tui" / "trust" / "data" / "mmlu"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "mmlu.json"
    path.write_text(
        json.dumps({"subjects": subjects, "test_counts": counts, "data": data}, ensure_ascii=False, separators=(",", ":")) + "\n",
        encoding="utf-8",
    )
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    licence = out_dir / "LICENSE"
    licence.write_text(LICENSE, encoding="utf-8")
    return [path, attribution, licence]
