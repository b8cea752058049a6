"""The `ctrust prompts` / `ctrust score` JSONL contracts (stable, documented in the README).

`score_file` lets users score generations made by any engine: each line is a prompt record
plus `output` (string) or `outputs` (list of n strings). Malformed input fails before anything
is scored, naming the line and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import CtrustError
from .dimension import JudgeContext, ToxicityScorer
from .registry import get_dimension
from .types import PromptRecord, Verdict

REQUIRED = ("id", "dimension", "scenario", "messages", "decoding")


def dump_prompts(records: Sequence[PromptRecord]) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def parse_scored_lines(dimension: str, lines: Sequence[str]) -> list[tuple[PromptRecord, list[str]]]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CtrustError(f"line {n}: bad JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise CtrustError(f"line {n}: expected a JSON object")
        missing = [f for f in REQUIRED if f not in obj]
        if missing:
            raise CtrustError(f"line {n}: missing field(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
        if obj["dimension"] != dimension:
            raise CtrustError(f"line {n}: record dimension {obj['dimension']!r} does not match {dimension!r}")
        if "outputs" in obj:
            outs = obj["outputs"]
            if not isinstance(outs, list) or not all(isinstance(o, str) for o in outs) or not outs:
                raise CtrustError(f"line {n}: field 'outputs' must be a non-empty list of strings")
        elif "output" in obj:
            if not isinstance(obj["output"], str):
                raise CtrustError(f"line {n}: field 'output' must be a string")
            outs = [obj["output"]]
        else:
            raise CtrustError(f"line {n}: missing field 'output' (string) or 'outputs' (list of strings)")
        try:
            rec = PromptRecord.from_dict(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise CtrustError(f"line {n}: malformed record ({exc})") from None
        out.append((rec, outs))
    if not out:
        raise CtrustError("no records in input")
    return out


def score_records(dimension: str, items: Sequence[tuple[PromptRecord, list[str]]], *,
                  scorer: ToxicityScorer | None = None, seed: int = 0) -> dict[str, Any]:
    """Judge and score records; `scorer` is required by dimensions that need a toxicity scorer."""
    dim = get_dimension(dimension)
    if dim.needs_toxicity_scorer and scorer is None:
        raise CtrustError(f"dimension {dimension!r} needs a toxicity scorer")
    ctx = JudgeContext(toxicity_scorer=scorer)
    judged: list[tuple[PromptRecord, Verdict]] = [(rec, dim.judge(rec, outs, ctx)) for rec, outs in items]
    res = dim.result(judged, seed=seed, scorer=getattr(scorer, "name", None))
    return {
        "dimension": dimension,
        "score": res.score,
        "ci95": list(res.ci95) if res.ci95 else None,
        "refusal_rate": res.refusal_rate,
        "n": res.n,
        "scorer": res.scorer,
        "scenarios": {k: dict(v) for k, v in res.scenarios.items()},
        "records": [{"id": rec.id, **v.to_dict()} for rec, v in judged],
    }


def score_file(dimension: str, path: Path, *, scorer: ToxicityScorer | None = None, seed: int = 0) -> dict[str, Any]:
    get_dimension(dimension)  # unknown dimension -> clear error before reading
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CtrustError(f"{path}: cannot read ({exc})") from None
    return score_records(dimension, parse_scored_lines(dimension, lines), scorer=scorer, seed=seed)
