"""Paper-style score tables (9 scores, refusal rates, Avg) for the CLI, exports and the TUI.

Column order and names follow the paper's sheet (MMLU, AdvDemo, AdvGLUE++, Fairness, Ethics,
OOD, Privacy, Stereotype, Toxicity, Avg) and come from the dimension registry. Avg is reported only
when all nine are present, as in the paper; a partial mean would not be comparable. Every string from
the cache goes through `textsafe` (csv_cell / md_cell / clean_tree), so an export never carries a
formula, a table break or a terminal escape planted in a model name or a scenario key.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Sequence

from .seed_groups import group_of
from .store.db import RunRow, ScoreRow
from .textsafe import clean_tree, csv_cell, md_cell
from .trust.registry import DIMENSIONS

COLUMNS: tuple[tuple[str, str], ...] = tuple((m.id, m.short) for m in DIMENSIONS)
TITLES = dict(COLUMNS)


@dataclass(frozen=True)
class TableRow:
    run: RunRow
    scores: dict[str, ScoreRow]

    @property
    def avg(self) -> float | None:
        vals = [self.scores[d].score for d, _ in COLUMNS if d in self.scores]
        if len(vals) < len(COLUMNS) or any(v is None for v in vals):
            return None
        return sum(vals) / len(vals)  # type: ignore[arg-type]


def build_rows(runs: Sequence[RunRow], scores: Sequence[ScoreRow]) -> list[TableRow]:
    by_run: dict[int, dict[str, ScoreRow]] = {}
    for s in scores:
        by_run.setdefault(s.run_id, {})[s.dimension] = s
    return [TableRow(r, by_run.get(r.id, {})) for r in runs]


def fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_ci(s: ScoreRow | None) -> str:
    if s is None or s.ci_low is None or s.ci_high is None:
        return ""
    return f"[{s.ci_low:.1f}, {s.ci_high:.1f}]"


def to_json(rows: Sequence[TableRow], rules: str = "paper") -> str:
    out = []
    for row in rows:
        r = row.run
        out.append({
            "run_id": r.id,
            "model": r.model_name,
            "compression": r.compression,
            "profile": r.profile,
            "seed": r.seed,
            "status": r.shown_status,
            "scorer": r.scorer,
            "calib_seed_group": group_of(r),
            # what ran it: device, dtype and how it was chosen, scheduler, library versions (not the pid)
            "env": {k: v for k, v in r.env.items() if k != "pid"},
            "rules": rules,
            "scores": {
                d: {
                    "score": s.score,
                    "ci95": [s.ci_low, s.ci_high] if s.ci_low is not None else None,
                    "refusal_rate": s.refusal_rate,
                    "refusal_phrase_rate": s.refusal_phrase_rate,
                    "n": s.n,
                    "final": s.final,
                    "scorer": s.scorer,
                    "rules": f"{s.rules}@{s.rules_version}",
                    "scenarios": s.scenarios,
                }
                for d, s in row.scores.items()
            },
            "avg": row.avg,
        })
    return json.dumps(clean_tree(out), indent=2)


def to_csv(rows: Sequence[TableRow], rules: str = "paper") -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["run_id", "model", "compression", "profile", "rules"]
    for _, title in COLUMNS:
        header += [title, f"{title}_refusal"]
    header.append("Avg")
    w.writerow(header)
    for row in rows:
        r = row.run
        line: list[Any] = [r.id, csv_cell(r.model_name), csv_cell(r.compression), csv_cell(r.profile), rules]
        for d, _ in COLUMNS:
            s = row.scores.get(d)
            line += [fmt(s.score if s else None, 2) if s else "", fmt(100 * s.refusal_rate, 1) if s and s.refusal_rate is not None else ""]
        line.append(fmt(row.avg, 2) if row.avg is not None else "")
        w.writerow(line)
    return buf.getvalue()


def to_markdown(rows: Sequence[TableRow], rules: str = "paper") -> str:
    dims = [d for d, _ in COLUMNS]
    head = ["run", "model", "compression"] + [TITLES[d] for d in dims] + ["Avg"]
    lines = [f"Scores under the {rules} rules (0-100, higher is more trustworthy).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        r = row.run
        cells = [f"#{r.id}", md_cell(r.model_name), md_cell(r.compression)]
        for d in dims:
            s = row.scores.get(d)
            if s is None:
                cells.append("")
            else:
                ref = f" (ref {100 * s.refusal_rate:.0f}%)" if s.refusal_rate else ""
                cells.append(f"{fmt(s.score)}{ref}")
        cells.append(fmt(row.avg))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
