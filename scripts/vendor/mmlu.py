"""Vendor MMLU: every subject's 5 dev questions (the 5-shot demos) and 35 seeded test questions.

The full test set (14,042 questions, 6.4 MB) exceeds the package data budget; 35 per subject
(1,995 questions, under 1 MB) keeps every subject with equal weight. Subjects are stored in a
seeded order (quick profiles take a prefix) and each subject's test items in a seeded order.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

SEED = "ctrust/mmlu/v1"
PER_SUBJECT = 35

ATTRIBUTION = """\
MMLU (Hendrycks et al., "Measuring Massive Multitask Language Understanding", ICLR 2021), MIT licence
(see LICENSE in this folder; https://github.com/hendrycks/test).
Copied from github.com/HaeChan0305/MLILAB-FedLLM commit d92730e8bacd7b3a61e551e015e40588e10234b4,
data/mmlu/{dev,test}/<subject>_{dev,test}.csv (HF cais/mmlu export: answer is an int 0-3).
Modified subset by scripts/vendor/mmlu.py (seed "ctrust/mmlu/v1"): all 5 dev rows per subject (the
5-shot demonstrations, in file order) and 35 seeded test rows per subject (of 100-1,534), as
[question, A, B, C, D, answer_index, row]; subjects and test rows in seeded order.
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


def build(shared: Path, root: Path) -> list[Path]:
    src = shared / "data" / "mmlu"
    subjects = sorted(p.name.removesuffix("_test.csv") for p in (src / "test").glob("*_test.csv"))
    random.Random(f"{SEED}/subjects").shuffle(subjects)
    data = {}
    for subject in subjects:
        dev = _rows(src / "dev" / f"{subject}_dev.csv")
        test = _rows(src / "test" / f"{subject}_test.csv")
        random.Random(f"{SEED}/{subject}").shuffle(test)
        data[subject] = {"dev": dev, "test": test[:PER_SUBJECT]}
    out_dir = root / "ctrust_tui" / "trust" / "data" / "mmlu"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "mmlu.json"
    path.write_text(
        json.dumps({"subjects": subjects, "data": data}, ensure_ascii=False, separators=(",", ":")) + "\n",
        encoding="utf-8",
    )
    attribution = out_dir / "ATTRIBUTION.txt"
    attribution.write_text(ATTRIBUTION, encoding="utf-8")
    licence = out_dir / "LICENSE"
    licence.write_text(LICENSE, encoding="utf-8")
    return [path, attribution, licence]
