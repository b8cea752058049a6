"""Rule sets end to end: both verdict sets stored per run, rescore, and runs never compared across rules."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from fakes import FakeBackend, fake_factory

from ctrust_tui.cli import main
from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store
from ctrust_tui.trust import get_dimension
from ctrust_tui.trust.rules import RULE_SETS

DIMS = ("advglue", "ood")


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _runs(models: Path, db: Path, specs: str = "none,rtn-4b-g32") -> list[int]:
    cfg = RunConfig(model="stub-model", compressions=parse_specs(specs), dimensions=DIMS, profile="smoke",
                    db_path=db, models_dir=models, limit=6)
    return Runner(cfg, lambda e: None, backend_factory=fake_factory(FakeBackend())).execute()


def test_every_output_is_judged_and_scored_under_both_rule_sets(stub_models, db_path):
    (rid,) = _runs(stub_models, db_path, "none")
    with open_store(db_path, readonly=True) as s:
        assert set(s.verdict_rules(rid)) == set(RULE_SETS)
        for rules in RULE_SETS:
            for d in DIMS:
                judged = s.judged(rid, d, rules)
                assert len(judged) == 6
                (score,) = [x for x in s.scores([rid], rules=rules) if x.dimension == d]
                assert score.final and score.score == get_dimension(d).aggregate(judged, rules)[0]
                assert all(v.extra["refusal_phrase"] in (0.0, 1.0) for _, v in judged)


def test_rescore_rederives_a_lost_rule_set_without_generating(stub_models, db_path):
    (rid,) = _runs(stub_models, db_path, "none")
    with open_store(db_path, readonly=True) as s:
        before = {(x.dimension, x.rules): x.score for x in s.scores([rid], rules=None)}
        gens = s.counts()["generations"]
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM verdicts WHERE rules = 'paper'")
        conn.execute("DELETE FROM scores WHERE rules = 'paper'")
    conn.close()
    res = _invoke("--db", str(db_path), "compare", str(rid), str(rid))
    assert res.exit_code == 2 and "no verdicts under the paper rules" in res.output
    assert f"ctrust rescore {rid} --rules paper" in res.output
    res = _invoke("--db", str(db_path), "rescore", str(rid), "--rules", "paper")
    assert res.exit_code == 0, res.output
    assert f"run #{rid}: 12 records re-judged under paper@1" in res.output
    with open_store(db_path, readonly=True) as s:
        after = {(x.dimension, x.rules): x.score for x in s.scores([rid], rules=None)}
        assert s.counts()["generations"] == gens
    assert after == before


def test_stale_rules_version_is_refused_until_rescored(stub_models, db_path):
    a, b = _runs(stub_models, db_path)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE verdicts SET rules_version = 0 WHERE run_id = ? AND rules = 'robust'", (b,))
    conn.close()
    res = _invoke("--db", str(db_path), "compare", str(a), str(b), "--rules", "robust")
    assert res.exit_code == 2 and "not the current robust@1" in res.output
    assert _invoke("--db", str(db_path), "rescore", str(b)).exit_code == 0
    assert _invoke("--db", str(db_path), "compare", str(a), str(b), "--rules", "robust").exit_code == 0


def test_compare_json_carries_rules_and_the_format_split(stub_models, db_path):
    a, b = _runs(stub_models, db_path)
    res = _invoke("--db", str(db_path), "compare", str(a), str(b), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["rules"] == "paper" and [d["dimension"] for d in data["dimensions"]] == list(DIMS)
    scored = [d for d in data["dimensions"] if d["delta"] is not None]
    assert scored  # (the paper's OOD score needs all four parts; 6 prompts may not reach them)
    for d in scored:
        sp = d["format_split"]
        assert sp["delta"] == d["delta"]
        assert abs(sp["changed_answers"] + sp["format_failures"] - sp["delta"]) < 1e-9
        assert 0.0 <= sp["format_failure_share_a"] <= 1.0


def test_exports_name_their_rule_set(stub_models, db_path):
    a, _ = _runs(stub_models, db_path)
    md = _invoke("--db", str(db_path), "export", str(a), "--format", "md", "--rules", "robust").output
    assert md.startswith("Scores under the robust rules")
    rows = json.loads(_invoke("--db", str(db_path), "export", str(a), "--format", "json").output)
    assert rows[0]["rules"] == "paper" and rows[0]["scores"]["advglue"]["rules"] == "paper@1"
    assert "rules" in _invoke("--db", str(db_path), "export", str(a), "--format", "csv").output.splitlines()[0]


def test_bad_rule_input_is_one_line_exit_2_and_writes_nothing(stub_models, db_path, tmp_path):
    (rid,) = _runs(stub_models, db_path, "none")
    before = db_path.read_bytes()
    for args in (["rescore", str(rid), "--rules", "strict"], ["rescore", "99"], ["compare", str(rid), str(rid),
                 "--rules", "loose"], ["runs", "--rules", "x"], ["export", str(rid), "--rules", "x"]):
        res = _invoke("--db", str(db_path), *args)
        assert res.exit_code == 2, args
        assert len(res.output.strip().splitlines()) == 1 and res.output.startswith("error: ")
    assert db_path.read_bytes() == before
    res = _invoke("run", "--rules", "strict", "--db", str(tmp_path / "new.db"))
    assert res.exit_code == 2 and "unknown rule set 'strict'" in res.output
    res = _invoke("run", "--prompt-format", "chatml", "--db", str(tmp_path / "new.db"))
    assert res.exit_code == 2 and "unknown prompt format" in res.output
    assert not (tmp_path / "new.db").exists()


def test_rescore_refuses_a_running_run(stub_models, db_path):
    (rid,) = _runs(stub_models, db_path, "none")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE runs SET status = 'running', env = ? WHERE id = ?",
                     (json.dumps({"pid": __import__("os").getpid(), "host": __import__("socket").gethostname()}), rid))
    conn.close()
    res = _invoke("--db", str(db_path), "rescore", str(rid))
    assert res.exit_code == 2 and "still running" in res.output
