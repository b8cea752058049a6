"""The `ctrust prompts` / `ctrust score` JSONL contracts (stable, documented in the README).

`score_file` lets users score generations made by any engine: each line is a prompt record
plus `output` (string) or `outputs` (list of n strings). Malformed input fails before anything
is scored, naming the line and field: missing or mistyped fields, context keys the dimension's
judge needs, a label outside its options, n mismatches, duplicate ids, unknown scenarios, JSON
nested deeper than 32 levels. Lines are split on \\n only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CtrustError
from .dimension import JudgeContext, ToxicityScorer
from .registry import get_dimension
from .rules import DEFAULT_RULES, rules_tag
from .types import PromptRecord, Verdict

REQUIRED = ("id", "dimension", "scenario", "messages", "decoding")
MAX_DEPTH = 32  # real records nest 4 deep (record > context > options > string)
# context keys each dimension's judge reads without a default; a `label` must be one of `options`
CONTEXT_KEYS: Mapping[str, tuple[str, ...]] = {
    "mmlu": ("label", "options"),
    "advdemo": ("label", "options"),  # and `target` for the attack-success (`kind: asr`) scenarios
    "advglue": ("label", "options"),
    "fairness": ("label", "options", "sensitive_attr"),
    "ethics": ("label", "options"),
    "ood": ("label", "options"),  # and `choices` indexed by the label for the knowledge scenarios
    "privacy": ("target",),
    "stereotype": (),
    "toxicity": (),
}


def dump_prompts(records: Sequence[PromptRecord]) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def split_lines(text: str) -> list[str]:
    """JSONL lines: split on \\n only (a trailing \\r dropped). `str.splitlines` would also split
    on U+2028, U+0085 and friends, which `ctrust prompts` writes raw inside JSON strings."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _depth(obj: Any) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_decoding(dec: Any) -> str | None:
    """The problem with a `decoding` object, or None."""
    if not isinstance(dec, dict):
        return "field 'decoding' must be an object"
    if not _is_int(dec.get("max_new_tokens")) or dec["max_new_tokens"] < 1:
        return "field 'decoding.max_new_tokens' must be an integer >= 1"
    if "n" in dec and (not _is_int(dec["n"]) or dec["n"] < 1):
        return "field 'decoding.n' must be an integer >= 1"
    for key in ("temperature", "top_p"):
        if key in dec and (not isinstance(dec[key], (int, float)) or isinstance(dec[key], bool)):
            return f"field 'decoding.{key}' must be a number"
    if "stop" in dec and (not isinstance(dec["stop"], list) or not all(isinstance(x, str) for x in dec["stop"])):
        return "field 'decoding.stop' must be a list of strings"
    return None


def _check_context(dimension: str, ctx: Any) -> str | None:
    """The problem with a record's `context` for `dimension`'s judge, or None."""
    if not isinstance(ctx, dict):
        return "field 'context' must be an object"
    needed = list(CONTEXT_KEYS.get(dimension, ()))
    if dimension == "advdemo" and ctx.get("kind") == "asr":
        needed.append("target")
    missing = [k for k in needed if k not in ctx]
    if missing:
        return f"context is missing {', '.join(repr(k) for k in missing)} (required for {dimension})"
    if "options" in needed:
        opts = ctx["options"]
        if not isinstance(opts, list) or not opts or not all(isinstance(o, str) for o in opts):
            return "field 'context.options' must be a non-empty list of strings"
        if not isinstance(ctx["label"], str) or ctx["label"] not in opts:
            return f"field 'context.label' {str(ctx['label'])[:40]!r} is not one of context.options"
    if "target" in needed and not isinstance(ctx["target"], str):
        return "field 'context.target' must be a string"
    if dimension == "ood" and "choices" in ctx:
        choices, label = ctx["choices"], ctx["label"]
        if not isinstance(choices, list) or not label.isdigit() or int(label) >= len(choices):
            return "field 'context.choices' must be a list that context.label indexes"
    return None


def _check_record(obj: dict[str, Any], dimension: str, scenarios: frozenset[str]) -> str | None:
    """The first problem with a parsed record (fields, types, the dimension's context), or None."""
    for key in ("id", "scenario"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            return f"field '{key}' must be a non-empty string"
    if obj["scenario"] not in scenarios:
        return f"scenario {obj['scenario'][:60]!r} is not a {dimension} scenario (see `ctrust prompts {dimension}`)"
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in msgs
    ):
        return "field 'messages' must be a list of {role, content} string objects"
    return _check_decoding(obj["decoding"])


def parse_scored_lines(dimension: str, lines: Sequence[str]) -> list[tuple[PromptRecord, list[str]]]:
    """Validate every line against the contract, then build records: the first problem is one
    `CtrustError` naming the line number and the field, before anything is scored."""
    dim = get_dimension(dimension)
    scenarios = frozenset(sc.name for sc in dim.scenarios())
    out = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CtrustError(f"line {n}: bad JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise CtrustError(f"line {n}: JSON nested too deeply (at most {MAX_DEPTH} levels)") from None
        if not isinstance(obj, dict):
            raise CtrustError(f"line {n}: expected a JSON object")
        if _depth(obj) > MAX_DEPTH:
            raise CtrustError(f"line {n}: JSON nested too deeply (at most {MAX_DEPTH} levels)")
        missing = [f for f in REQUIRED if f not in obj]
        if missing:
            raise CtrustError(f"line {n}: missing field(s) {', '.join(missing)} (required: {', '.join(REQUIRED)}, context)")
        if obj["dimension"] != dimension:
            raise CtrustError(f"line {n}: record dimension {str(obj['dimension'])[:40]!r} does not match {dimension!r}")
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
        if "context" not in obj:
            raise CtrustError(f"line {n}: missing field 'context' (write records with `ctrust prompts {dimension}`)")
        problem = _check_record(obj, dimension, scenarios) or _check_context(dimension, obj["context"])
        if problem:
            raise CtrustError(f"line {n}: {problem}")
        want = obj["decoding"].get("n", 1)
        if len(outs) != want:
            raise CtrustError(f"line {n}: {len(outs)} output(s) but decoding.n is {want}; "
                              f"give exactly {want} in 'outputs'")
        if obj["id"] in seen:
            raise CtrustError(f"line {n}: duplicate id {obj['id'][:60]!r} (first on line {seen[obj['id']]})")
        seen[obj["id"]] = n
        try:
            rec = PromptRecord.from_dict(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise CtrustError(f"line {n}: malformed record ({exc})") from None
        out.append((rec, outs))
    if not out:
        raise CtrustError("no records in input")
    return out


def score_records(dimension: str, items: Sequence[tuple[PromptRecord, list[str]]], *,
                  scorer: ToxicityScorer | None = None, seed: int = 0, rules: str = DEFAULT_RULES) -> dict[str, Any]:
    """Judge and score records under `rules`; `scorer` is required by dimensions that need a toxicity scorer."""
    dim = get_dimension(dimension)
    if dim.needs_toxicity_scorer and scorer is None:
        raise CtrustError(f"dimension {dimension!r} needs a toxicity scorer")
    ctx = JudgeContext(toxicity_scorer=scorer, rules=rules)
    judged: list[tuple[PromptRecord, Verdict]] = [(rec, dim.judge(rec, outs, ctx)) for rec, outs in items]
    res = dim.result(judged, seed=seed, scorer=getattr(scorer, "name", None), rules=rules)
    return {
        "dimension": dimension,
        "rules": rules_tag(rules),
        "score": res.score,
        "ci95": list(res.ci95) if res.ci95 else None,
        "refusal_rate": res.refusal_rate,
        "refusal_phrase_rate": res.refusal_phrase_rate,
        "n": res.n,
        "scorer": res.scorer,
        "scenarios": {k: dict(v) for k, v in res.scenarios.items()},
        "records": [{"id": rec.id, **v.to_dict()} for rec, v in judged],
    }


def score_file(dimension: str, path: Path, *, scorer: ToxicityScorer | None = None, seed: int = 0,
               rules: str = DEFAULT_RULES) -> dict[str, Any]:
    if dimension == "all" or "," in dimension:
        raise CtrustError("`ctrust score` takes one dimension (the records' `dimension` field), not a list or 'all'")
    get_dimension(dimension)  # unknown dimension -> clear error before reading
    try:
        lines = split_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CtrustError(f"{path}: cannot read ({exc})") from None
    return score_records(dimension, parse_scored_lines(dimension, lines), scorer=scorer, seed=seed, rules=rules)
