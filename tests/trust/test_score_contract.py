"""Item 5 of the hardening issue: `ctrust score` validates the JSONL contract.

Every malformed record is one line naming the line number and the field (exit 2), before anything
is scored; a property test (Hypothesis) feeds mutated and random records and checks that the
answer is always a score or one clean error line, never a traceback (exit 1 = internal error).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ctrust_tui.cli import main
from ctrust_tui.trust import get_dimension, get_profile, jsonl
from ctrust_tui.trust.dimension import Dimension, JudgeContext
from ctrust_tui.trust.rules import ROBUST

DIMS = ("mmlu", "advdemo", "advglue", "fairness", "ethics", "ood", "privacy", "stereotype", "toxicity")


@pytest.fixture(autouse=True)
def _judgeable_rules(monkeypatch):
    """Score with the paper rules where a dimension has them, else the robust ones: this file tests the
    input contract, not the rules (dimensions gain paper rules on their own branches)."""
    if any(type(get_dimension(d)).judge_paper is Dimension.judge_paper for d in DIMS):
        monkeypatch.setattr(jsonl, "JudgeContext", functools.partial(JudgeContext, rules=ROBUST))


@functools.cache
def _records(dim: str) -> tuple[dict, ...]:
    return tuple(r.to_dict() for r in get_dimension(dim).build_prompts(get_profile("smoke")))


def _valid(dim: str, i: int = 0) -> dict:
    rec = copy.deepcopy(_records(dim)[i % len(_records(dim))])
    n = rec["decoding"].get("n", 1)
    rec["outputs"] = [rec["context"].get("label", "I disagree.")] * n
    return rec


def _score(tmp_path: Path, dim: str, lines: list[str], name: str = "in.jsonl"):
    f = tmp_path / name
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CliRunner().invoke(main, ["score", dim, str(f)])


def _error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: line "), res.output
    return lines[0]


def _without(d: dict, *path: str) -> dict:
    d = copy.deepcopy(d)
    node = d
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return d


def _with(d: dict, value, *path: str) -> dict:
    d = copy.deepcopy(d)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


def _asr(i: int = 0) -> dict:
    return next(copy.deepcopy(r) for r in _records("advdemo") if r["context"].get("kind") == "asr")


CASES = [
    ("ethics", lambda: _without(_valid("ethics"), "context"), "line 1: missing field 'context'"),
    ("ethics", lambda: _without(_valid("ethics"), "context", "label"), "line 1: context is missing 'label'"),
    ("mmlu", lambda: _without(_valid("mmlu"), "context", "options"), "context is missing 'options'"),
    ("privacy", lambda: _without(_valid("privacy"), "context", "target"), "context is missing 'target' (required for privacy)"),
    ("advdemo", lambda: {**_without(_asr(), "context", "target"), "output": "positive"}, "context is missing 'target'"),
    ("fairness", lambda: _with(_valid("fairness"), "maybe", "context", "label"), "'maybe' is not one of context.options"),
    ("ethics", lambda: _with(_valid("ethics"), "wrong", "context", "options"), "'context.options' must be a non-empty list"),
    ("ethics", lambda: _with(_valid("ethics"), 3, "decoding", "n"), "1 output(s) but decoding.n is 3"),
    ("ethics", lambda: _with(_valid("ethics"), ["a", "b"], "outputs"), "2 output(s) but decoding.n is 1"),
    ("ethics", lambda: _with(_valid("ethics"), None, "scenario"), "field 'scenario' must be a non-empty string"),
    ("ethics", lambda: _with(_valid("ethics"), "made_up", "scenario"), "scenario 'made_up' is not a ethics scenario"),
    ("ethics", lambda: _with(_valid("ethics"), "many", "decoding", "max_new_tokens"), "decoding.max_new_tokens' must be an integer"),
    ("ethics", lambda: _with(_valid("ethics"), [{"role": 1}], "messages"), "field 'messages' must be a list"),
    ("ethics", lambda: _with(_valid("ethics"), 7, "id"), "field 'id' must be a non-empty string"),
    ("ood", lambda: _with(next(_with(r, ["x"], "outputs") for r in _records("ood") if "choices" in r["context"]),
                          [], "context", "choices"), "context.label indexes"),
]


@pytest.mark.parametrize("dim, make, message", CASES, ids=[c[2][:40] for c in CASES])
def test_malformed_records_name_line_and_field(tmp_path, dim, make, message) -> None:
    assert message in _error(_score(tmp_path, dim, [json.dumps(make())]))


def test_duplicate_ids_name_both_lines(tmp_path) -> None:
    rec = json.dumps(_valid("ethics"))
    line = _error(_score(tmp_path, "ethics", [rec, json.dumps(_valid("ethics", 1)), rec]))
    assert "line 3: duplicate id 'ethics/zero_shot/0' (first on line 1)" in line


@pytest.mark.parametrize("depth", [40, 100_000])
def test_pathologically_nested_json_is_one_line(tmp_path, depth) -> None:
    rec = _valid("ethics")
    text = json.dumps(rec)[:-1] + ', "junk": ' + "[" * depth + "]" * depth + "}"
    assert "line 1: JSON nested too deeply (at most 32 levels)" in _error(_score(tmp_path, "ethics", [text]))


def test_lines_split_on_newline_only(tmp_path) -> None:
    """Outputs may hold U+2028, U+2029 and U+0085 raw (ctrust prompts writes ensure_ascii=False);
    files written on Windows end lines with CRLF."""
    recs = [_valid("ethics", i) for i in range(4)]
    recs[0]["outputs"] = ["wrong\u2028really\u0085wrong\u2029"]
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    assert "\u2028" in lines[0]
    for name, text in (("lf.jsonl", "\n".join(lines) + "\n"), ("crlf.jsonl", "\r\n".join(lines) + "\r\n")):
        f = tmp_path / name
        f.write_bytes(text.encode("utf-8"))
        res = CliRunner().invoke(main, ["score", "ethics", str(f)])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["n"] == 4


def test_score_all_is_refused_with_the_reason(tmp_path) -> None:
    res = _score(tmp_path, "all", [json.dumps(_valid("ethics"))])
    assert res.exit_code == 2 and "takes one dimension" in res.output


def test_every_dimension_accepts_its_own_prompts(tmp_path) -> None:
    """The contract is exactly what `ctrust prompts` writes: no false alarms on real records."""
    for dim in DIMS:
        res = _score(tmp_path, dim, [json.dumps(_valid(dim, i)) for i in range(len(_records(dim)))], f"{dim}.jsonl")
        assert res.exit_code == 0, (dim, res.output)
        assert json.loads(res.output)["n"] == len(_records(dim))


# -- property: a score or one clean error line, whatever the input --------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["wrong", "not wrong", "A", "yes", "no", "I agree.", "I disagree.", "positive", "\u2028", "\x1b[2J", "0", "5"])
FIELDS = ["id", "dimension", "scenario", "messages", "decoding", "context", "output", "outputs"]


@st.composite
def mutated_record(draw, dim: str):
    rec = _valid(dim, draw(st.integers(0, 50)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["drop", "replace", "context", "decoding", "outputs"]))
        if kind == "drop":
            rec.pop(draw(st.sampled_from(FIELDS)), None)
        elif kind == "replace":
            rec[draw(st.sampled_from(FIELDS))] = draw(JSON)
        elif kind == "context" and isinstance(rec.get("context"), dict):
            key = draw(st.sampled_from([*rec["context"], "label", "options", "target", "kind", "choices"]))
            rec["context"][key] = draw(JSON | TEXT | st.lists(TEXT, max_size=3))
        elif kind == "decoding" and isinstance(rec.get("decoding"), dict):
            rec["decoding"][draw(st.sampled_from(["n", "max_new_tokens", "temperature", "stop"]))] = draw(JSON)
        else:
            rec["outputs"] = draw(st.lists(TEXT, min_size=0, max_size=3))
    return rec


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_records_get_a_score_or_one_clean_error(tmp_path, data) -> None:
    dim = data.draw(st.sampled_from(DIMS))
    record = mutated_record(dim).map(lambda r: json.dumps(r, ensure_ascii=False))
    junk = JSON.map(json.dumps) | st.text(max_size=30)
    lines = data.draw(st.lists(st.one_of(record, record, record, record, junk), min_size=1, max_size=3))
    res = _score(tmp_path, dim, lines)
    event(f"exit {res.exit_code}")  # --hypothesis-show-statistics: both outcomes are exercised
    if res.exit_code == 0:
        out = json.loads(res.output)
        assert out["dimension"] == dim and out["n"] >= 1
    else:
        assert res.exit_code == 2, res.output  # 1 would be an internal error: a traceback in a log
        out_lines = res.output.splitlines()
        assert len(out_lines) == 1 and out_lines[0].startswith("error: "), res.output
