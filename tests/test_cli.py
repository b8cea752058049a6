"""CLI contracts: prompts/score JSONL, exports, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import fake_factory

from ctrust_tui.cli import main
from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_prompts_then_score_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    res = _invoke("prompts", "ethics", "--profile", "smoke", "--out", str(out))
    assert res.exit_code == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 24 and {"id", "dimension", "scenario", "messages", "decoding", "context"} <= set(recs[0])
    for r in recs:
        r["output"] = r["context"]["label"]  # a perfect model
    scored = tmp_path / "s.jsonl"
    scored.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = _invoke("score", "ethics", str(scored))
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data["score"] == 100.0 and data["dimension"] == "ethics" and len(data["records"]) == 24
    assert all(r["correct"] for r in data["records"])


@pytest.mark.parametrize(
    "line, message",
    [
        ("{bad json", "line 1: bad JSON"),
        ('{"id": "x"}', "line 1: missing field(s) dimension, scenario, messages, decoding"),
        ('{"id":"x","dimension":"ethics","scenario":"s","messages":[],"decoding":{"max_new_tokens":1}}',
         "line 1: missing field 'output'"),
    ],
)
def test_score_malformed_input_is_one_clear_error(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(line + "\n")
    res = CliRunner().invoke(main, ["score", "ethics", str(f)])
    assert res.exit_code == 2
    assert message in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--dimensions", "bogus"], "unknown dimension 'bogus'; choose from: mmlu"),
        (["run", "--compression", "gptq-5b"], "unsupported bits 5"),
        (["run", "--profile", "huge"], "Invalid value for '--profile'"),
        (["prompts", "nope"], "unknown dimension 'nope'"),
        (["export", "99"], "no run #99"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    open_store(tmp_path / "c.db").close()
    res = CliRunner().invoke(main, ["--db", str(tmp_path / "c.db"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_missing_cache_is_one_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["runs", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 2 and "no such cache file" in res.output
    assert not (tmp_path / "none.db").exists()


def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices(id INTEGER)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    res = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert res.exit_code == 2 and "not a ctrust cache" in res.output
    res = CliRunner().invoke(main, ["run", "--db", str(db), "--dimensions", "ethics"])
    assert res.exit_code == 2 and "not a ctrust cache" in res.output
    assert db.read_bytes() == before


def test_runs_export_and_compare(stub_models: Path, db_path: Path, tmp_path: Path) -> None:
    cfg = RunConfig(model="stub-model", compressions=parse_specs("none,wanda-2:4"), dimensions=("ethics", "stereotype"),
                    profile="smoke", db_path=db_path, models_dir=stub_models, limit=4)
    ids = Runner(cfg, lambda e: None, backend_factory=fake_factory()).execute()
    res = _invoke("runs", "--db", str(db_path))
    assert res.exit_code == 0 and "wanda-2:4" in res.output and "Ethics" in res.output
    res = _invoke("runs", "--db", str(db_path), "--json")
    assert {r["compression"] for r in json.loads(res.output)} == {"none", "wanda-2:4"}
    md = _invoke("export", *map(str, ids), "--format", "md", "--db", str(db_path)).output
    assert md.startswith("Scores under the paper rules")
    head = next(line for line in md.splitlines() if line.startswith("| run |"))
    assert head.startswith("| run | model | compression | MMLU |") and head.endswith("| Avg |")
    csv_out = tmp_path / "t.csv"
    _invoke("export", *map(str, ids), "--format", "csv", "--out", str(csv_out), "--db", str(db_path))
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("run_id,model,compression,profile,rules,MMLU,MMLU_refusal") and len(lines) == 3
    js = json.loads(_invoke("export", str(ids[0]), "--format", "json", "--db", str(db_path)).output)
    assert "ci95" in js[0]["scores"]["ethics"]
    cmp = json.loads(_invoke("compare", str(ids[0]), str(ids[1]), "--json", "--db", str(db_path)).output)
    assert cmp["rules"] == "paper" and (cmp["base"], cmp["variant"]) == (ids[0], ids[1])
    assert {c["dimension"] for c in cmp["dimensions"]} == {"ethics", "stereotype"}
    assert all(c["n_shared"] == 4 for c in cmp["dimensions"])
