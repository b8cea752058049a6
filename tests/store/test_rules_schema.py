"""Schema v3: verdicts and scores per rule set; older caches migrate (writable) or read through views."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ctrust_tui.store import open_store
from ctrust_tui.store.schema import MIGRATIONS, SCHEMA_VERSION
from ctrust_tui.trust.rules import RULES_VERSION
from ctrust_tui.trust.types import Decoding, DimensionResult, Message, PromptRecord, Verdict


def _record(i: int) -> PromptRecord:
    return PromptRecord(f"ethics/zero_shot/{i}", "ethics", "zero_shot", (Message("user", f"q{i}"),),
                        Decoding(max_new_tokens=4), {"label": "wrong", "options": ["wrong", "not wrong"]})


def _v2_cache(path) -> None:
    """A cache as ctrust wrote it before rule sets: one run, two verdicts, one score."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    MIGRATIONS[0](conn)
    MIGRATIONS[1](conn)
    conn.execute("INSERT INTO meta VALUES ('app','ctrust'), ('schema_version','2')")
    conn.execute("INSERT INTO runs(id, settings_hash, model_name, model_fingerprint, compression, dimensions, profile,"
                 " seed, settings, status, created_at, updated_at) VALUES (1,'h','m','fp','none','[\"ethics\"]',"
                 "'smoke',0,'{}','finished','t','t')")
    for i in range(2):
        rec = _record(i)
        conn.execute("INSERT INTO prompts VALUES (?,?,?,?,?)",
                     (rec.key, rec.id, "ethics", "zero_shot", json.dumps(rec.to_dict())))
        conn.execute("INSERT INTO verdicts VALUES (1,?,?,?,?,?,?,?,?,?,?)",
                     (rec.key, rec.id, "ethics", "zero_shot", "wrong", 0, 1, None,
                      json.dumps({"verdict": "wrong", "refusal": False, "correct": True}), None))
    conn.execute("INSERT INTO scores VALUES (1,'ethics',75.0,50.0,100.0,0.0,2,2,'{}',NULL,1,'t')")
    conn.commit()
    conn.close()


def test_v2_cache_reads_read_only_as_robust_without_writing(tmp_path):
    p = tmp_path / "v2.db"
    _v2_cache(p)
    before = p.read_bytes()
    with open_store(p, readonly=True) as ro:
        assert [s.score for s in ro.scores([1], rules="robust")] == [75.0]
        assert ro.scores([1], rules="paper") == []
        assert len(ro.judged(1, "ethics", "robust")) == 2
        assert ro.verdict_rules(1) == {"robust": {"versions": [1], "n": 2}}
    assert p.read_bytes() == before


def test_v2_cache_migrates_keeping_rows_as_robust_v1(tmp_path):
    p = tmp_path / "v2.db"
    _v2_cache(p)
    with open_store(p) as s:
        assert dict(s.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
        rows = s.conn.execute("SELECT rules, rules_version, verdict FROM verdicts").fetchall()
        assert rows == [("robust", 1, "wrong"), ("robust", 1, "wrong")]
        (score,) = s.scores([1], rules=None)
        assert (score.rules, score.rules_version, score.score) == ("robust", 1, 75.0)
        assert score.stale  # made before rule sets existed: `ctrust rescore` re-derives it
        # the rebuilt tables keep the per-rule primary key
        rec = _record(0)
        s.put_verdicts(1, [(rec, Verdict("invalid", correct=False))], "ethics:paper@1", rules="paper")
        s.put_verdicts(1, [(rec, Verdict("not wrong", correct=False))], "ethics:paper@1", rules="paper")
        assert s.verdict_rules(1)["paper"] == {"versions": [RULES_VERSION["paper"]], "n": 1}
        assert [v.verdict for _, v in s.judged(1, "ethics", "paper")] == ["not wrong"]
        assert len(s.judged(1, "ethics", "robust")) == 2


def test_scores_are_kept_per_rule_set(tmp_path):
    with open_store(tmp_path / "c.db") as s:
        for rules, score in (("paper", 40.0), ("robust", 60.0)):
            s.put_score(7, DimensionResult("ethics", score, None, 0.1, 4, rules=rules, refusal_phrase_rate=0.25),
                        total=4, final=True)
        got = {r.rules: r for r in s.scores([7], rules=None)}
        assert got["paper"].score == 40.0 and got["robust"].score == 60.0
        assert got["paper"].refusal_phrase_rate == 0.25 and not got["paper"].stale
        assert [r.score for r in s.scores([7])] == [40.0]  # paper is the default


@pytest.mark.parametrize("kill_at", range(2, 30))
def test_v3_migration_is_atomic(tmp_path, kill_at):
    """A failure part-way through the rebuild leaves the v2 cache as it was (every statement of it,
    sqlite-utils' own queries included: 22 today)."""
    p = tmp_path / "v2.db"
    _v2_cache(p)
    conn = sqlite3.connect(p)
    calls = [0]
    real = conn.execute

    class Boom(Exception):
        pass

    class Proxy:
        @property
        def in_transaction(self):
            return conn.in_transaction

        def execute(self, sql, *a):
            calls[0] += 1
            if calls[0] == kill_at:
                raise Boom(sql)
            return real(sql, *a)

    try:
        with conn:
            MIGRATIONS[2](Proxy())  # type: ignore[arg-type]
    except Boom:
        pass
    else:
        conn.close()
        assert calls[0] < kill_at
        pytest.skip(f"the migration has {calls[0]} statements")
    conn.close()
    with open_store(p, readonly=True) as ro:
        assert [s.score for s in ro.scores([1], rules="robust")] == [75.0]
    with open_store(p) as s:  # the next writable open finishes the migration
        assert [(r.rules, r.score) for r in s.scores([1], rules=None)] == [("robust", 75.0)]
        assert len(s.judged(1, "ethics", "robust")) == 2
