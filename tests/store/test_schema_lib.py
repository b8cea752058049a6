"""The store on sqlite-utils: a fresh cache has the schema of one written by the hand-written DDL
and migrated; such caches keep their rows and stay searchable; inserts are idempotent; a write
batch and a migration are each one transaction although sqlite-utils commits as it goes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from legacy_caches import make_legacy_cache

from ctrust_tui.errors import StoreError
from ctrust_tui.store import SCHEMA_VERSION, open_store
from ctrust_tui.store.lib import library
from ctrust_tui.store.schema import MIGRATIONS
from ctrust_tui.trust.types import Decoding, Message, PromptRecord, Verdict


def _affinity(decl: str) -> str:
    """SQLite's column affinity rules (datatype3.html 3.1): FLOAT and REAL are both REAL."""
    t = decl.upper()
    if "INT" in t:
        return "INTEGER"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not t or "BLOB" in t:
        return "BLOB"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def schema(conn: sqlite3.Connection) -> dict:
    """What a cache's behaviour depends on: per table its columns (order, affinity, NOT NULL, default,
    primary-key position), WITHOUT ROWID, AUTOINCREMENT and indexes (columns, unique); triggers."""
    out: dict = {}
    for kind, name, tbl, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            " AND name NOT LIKE 'generations_fts_%' ORDER BY name"):
        if kind == "trigger":
            out[f"trigger {name}"] = tbl
        if kind != "table":
            continue
        cols = [(c[1], _affinity(c[2]), c[3], c[4], c[5]) for c in conn.execute(f"PRAGMA table_info([{name}])")]
        indexes = set()
        for _, iname, unique, origin, _partial in conn.execute(f"PRAGMA index_list([{name}])"):
            icols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info([{iname}])"))
            indexes.add((iname if origin == "c" else origin, unique, icols))
        upper = " ".join(sql.upper().split())
        out[name] = {"columns": cols, "indexes": indexes, "without_rowid": upper.endswith("WITHOUT ROWID"),
                     "autoincrement": "AUTOINCREMENT" in upper, "virtual": upper.startswith("CREATE VIRTUAL")}
    return out


def _record(i: int, dim: str = "ethics") -> PromptRecord:
    return PromptRecord(f"r{i}", dim, "zero", (Message("user", f"is act {i} wrong?"),), Decoding(8))


def _gen(i: int, record: PromptRecord, output: str) -> dict:
    return {"key": f"g{i:05d}", "model_fingerprint": "fp", "compression": "none", "prompt_key": record.key,
            "rendered_hash": "rh", "decoding": {"max_new_tokens": 8}, "sample_index": 0, "seed": 0,
            "output": output, "n_tokens": 3, "finish": "eos", "seconds": 0.01}


def _fts_ok(conn: sqlite3.Connection) -> bool:
    try:  # external-content FTS5: the index agrees with the generations table
        conn.execute("INSERT INTO generations_fts(generations_fts) VALUES ('integrity-check')")
        return True
    except sqlite3.DatabaseError:
        return False


@pytest.mark.parametrize("version", [1, 4])
def test_fresh_schema_equals_a_migrated_legacy_cache(tmp_path: Path, version: int):
    with open_store(tmp_path / "fresh.db") as fresh:
        want = schema(fresh.conn)
    make_legacy_cache(tmp_path / "old.db", version)
    with open_store(tmp_path / "old.db") as old:
        got = schema(old.conn)
        assert dict(old.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
    assert got == want
    # the properties sqlite-utils cannot write are there in both
    assert want["verdicts"]["without_rowid"] and want["flip_forensics"]["without_rowid"]
    assert want["runs"]["autoincrement"] and ("u", 1, ("settings_hash",)) in want["runs"]["indexes"]
    assert {k for k in want if k.startswith("trigger")} == {f"trigger generations_{s}" for s in ("ai", "ad", "au")}


def _fill_legacy(path: Path, version: int, outputs: list[str]) -> None:
    """Rows as the pre-sqlite-utils code wrote them: a run, its prompts, outputs (indexed by the old
    triggers), verdicts and a score."""
    conn = sqlite3.connect(path)
    recs = [_record(i) for i in range(len(outputs))]
    with conn:
        conn.execute("INSERT INTO runs(settings_hash, model_name, model_fingerprint, compression, dimensions, profile,"
                     " seed, settings, status, created_at, updated_at) VALUES ('h', 'm', 'fp', 'none', '[\"ethics\"]',"
                     " 'smoke', 0, '{}', 'finished', 't', 't')")
        for i, (rec, out) in enumerate(zip(recs, outputs)):
            conn.execute("INSERT INTO prompts VALUES (?,?,?,?,?)", (rec.key, rec.id, rec.dimension, rec.scenario,
                                                                    json.dumps(rec.to_dict())))
            conn.execute("INSERT INTO run_prompts VALUES (1, ?, ?)", (rec.key, i))
            g = _gen(i, rec, out)
            conn.execute("INSERT INTO generations(key, model_fingerprint, compression, prompt_key, rendered_hash,"
                         " decoding, sample_index, seed, output, created_at) VALUES (?,?,?,?,?,'{}',0,0,?,'t')",
                         (g["key"], g["model_fingerprint"], g["compression"], g["prompt_key"], "rh", out))
            data = '{"verdict": "wrong", "refusal": false, "correct": true}'
            if version < 3:
                conn.execute("INSERT INTO verdicts VALUES (1, ?, ?, 'ethics', 'zero', 'wrong', 0, 1, NULL, ?, NULL)",
                             (rec.key, rec.id, data))
            else:
                conn.execute("INSERT INTO verdicts VALUES (1, ?, 'robust', 1, ?, 'ethics', 'zero', 'wrong', 0, 1,"
                             " NULL, ?, NULL)", (rec.key, rec.id, data))
        if version < 3:
            conn.execute("INSERT INTO scores(run_id, dimension, score, n, updated_at) VALUES (1, 'ethics', 75, 2, 't')")
        else:
            conn.execute("INSERT INTO scores(run_id, dimension, rules, rules_version, score, n, updated_at)"
                         " VALUES (1, 'ethics', 'robust', 1, 75, 2, 't')")
    conn.close()


@pytest.mark.parametrize("version", [1, 4])
def test_legacy_cache_migrates_keeping_rows_and_search(tmp_path: Path, version: int):
    p = make_legacy_cache(tmp_path / "old.db", version)
    _fill_legacy(p, version, ["the river is wide", "I cannot help with that"])
    with open_store(p, readonly=True) as ro:  # read-only first: nothing is written, search works
        assert [h["key"] for h in ro.search("river")] == ["g00000"]
    with open_store(p) as s:
        assert s.counts() == {"runs": 1, "prompts": 2, "generations": 2, "verdicts": 2, "scores": 1}
        assert [h["key"] for h in s.search("cannot help")] == ["g00001"]
        items = s.run_items(1, rules="robust")
        assert [it.outputs for it in items] == [("the river is wide",), ("I cannot help with that",)]
        assert all(it.verdict and it.verdict.verdict == "wrong" for it in items)
        # the old triggers still index new rows written through sqlite-utils
        s.put_generations([_gen(7, _record(7), "a mountain of output")])
        assert [h["key"] for h in s.search("mountain")] == ["g00007"]
        assert _fts_ok(s.conn) and s.integrity_ok()
        triggers = [r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='trigger' ORDER BY 1")]
        assert triggers == ["generations_ad", "generations_ai", "generations_au"]
        run_id, resumed = s.open_run({"new": 1}, model_name="m", model_fingerprint="fp", compression="none",
                                     dimensions=["ethics"], profile="smoke", seed=0, scorer=None, env={})
        assert (run_id, resumed) == (2, False)


@pytest.mark.skipif(bool(os.environ.get("CTRUST_TEST_CACHE_FROM")), reason="about fresh caches (conftest.py)")
def test_fresh_cache_is_searchable_with_sqlite_utils_index(tmp_path: Path):
    """Caches made before have the hand-written index, which `detect_fts` does not recognise
    (content='generations' in single quotes): `Store.search` names the table itself."""
    with open_store(tmp_path / "c.db") as s:
        assert s.db["generations"].detect_fts() == "generations_fts"  # sqlite-utils' own FTS5 index
        s.put_generations([_gen(0, _record(0), "yes the answer is B"), _gen(1, _record(1), "no")])
        assert [h["key"] for h in s.search("answer")] == ["g00000"]
        assert [r["key"] for r in s.db["generations"].search("answer", columns=["key"])] == ["g00000"]
        assert _fts_ok(s.conn)


@pytest.mark.parametrize("query", ['"a\nNOT c"', 'a" OR "x', '"x\nOR\ny"', '"', 'NEAR(a b)', "output:a", "a*",
                                   "^a", '"a b', "(", "a AND", "-x"])
def test_search_text_never_becomes_fts_syntax(tmp_path: Path, query: str):
    """`db.quote_fts` alone keeps user phrases, so a quote that spans a newline ends up outside the
    quoting ('"x\\nOR\\ny"' searched x OR y): quotes are removed first, as before the change."""
    with open_store(tmp_path / "c.db") as s:
        s.put_generations([_gen(0, _record(0), "a b NOT c"), _gen(1, _record(1), "x y OR")])
        hits = {h["key"] for h in s.search(query)}  # never raises
        # each whitespace-separated word is a literal phrase of its tokens (unicode61: letters and digits)
        words = [re.findall(r"\w+", w.lower()) for w in query.replace('"', " ").split()]

        def has(text: str, phrase: list[str]) -> bool:
            toks = text.lower().split()
            return any(toks[i:i + len(phrase)] == phrase for i in range(len(toks)))

        expect = {g for g, text in (("g00000", "a b NOT c"), ("g00001", "x y OR"))
                  if words and all(w and has(text, w) for w in words)}  # a word of no tokens matches nothing
        assert hits == expect


def test_inserts_are_idempotent(tmp_path: Path):
    recs = [_record(i) for i in range(3)]
    with open_store(tmp_path / "c.db") as s:
        for _ in range(2):
            assert s.add_run_prompts(1, recs) == [r.key for r in recs]
            s.put_generations([_gen(i, r, f"output {i} river") for i, r in enumerate(recs)])
            s.put_verdicts(1, [(r, Verdict("wrong", correct=True)) for r in recs], "ethics:paper@1")
            s.put_forensics([("g00000", "g00001", 1, {"status": "identical"})])
        s.put_verdicts(1, [(recs[0], Verdict("not wrong", correct=False))], "ethics:paper@1")  # replaces
        assert s.counts()["generations"] == 3 and s.counts()["prompts"] == 3 and s.counts()["verdicts"] == 3
        assert s.conn.execute("SELECT position FROM run_prompts ORDER BY position").fetchall() == [(0,), (1,), (2,)]
        assert len(s.search("river")) == 3 and _fts_ok(s.conn)
        assert [v.verdict for _, v in s.judged(1, "ethics")] == ["not wrong", "wrong", "wrong"]
        assert s.forensics([("g00000", "g00001")], 1) == {("g00000", "g00001"): {"status": "identical"}}


class _FailNth:
    """A connection whose n-th INSERT fails, as a full disk would part-way through a batch."""

    def __init__(self, conn: sqlite3.Connection, n: int) -> None:
        self._conn, self._n, self.inserts = conn, n, 0

    def execute(self, sql, *a):
        if sql.lstrip().upper().startswith("INSERT"):
            self.inserts += 1
            if self.inserts == self._n:
                raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *a)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_write_batch_is_one_transaction(tmp_path: Path):
    """sqlite-utils inserts 71 generations per statement and would commit after each; the store's
    batch of 200 is still all or nothing."""
    with open_store(tmp_path / "c.db") as s:
        fail = _FailNth(s.conn, 3)
        s.db = library(fail)
        rows = [_gen(i, _record(i), f"output {i}") for i in range(200)]
        with pytest.raises(StoreError, match="disk is full"):
            s.put_generations(rows)
        assert fail.inserts == 3  # two chunks went in before the failure ...
        assert s.counts()["generations"] == 0 and s.search("output") == []  # ... and were rolled back
        s.db = library(s.conn)
        s.put_generations(rows)
        assert s.counts()["generations"] == 200 and _fts_ok(s.conn)


@pytest.mark.parametrize("fail_on", ["CREATE TABLE IF NOT EXISTS [prompts]", "CREATE VIRTUAL TABLE", "INSERT INTO [generations_fts]",
                                     "CREATE TRIGGER [generations_au]"])
def test_v1_is_one_transaction_although_enable_fts_runs_a_script(tmp_path: Path, fail_on: str):
    p = tmp_path / "c.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('app', 'ctrust'), ('schema_version', '0')")
    conn.commit()

    class Proxy:
        in_transaction = property(lambda self: conn.in_transaction)

        def execute(self, sql, *a):
            if fail_on in sql:
                raise RuntimeError("killed")
            return conn.execute(sql, *a)

    with pytest.raises(RuntimeError):
        with conn:
            MIGRATIONS[0](Proxy())  # type: ignore[arg-type]
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["meta", "sqlite_autoindex_meta_1"]
    conn.close()
    with open_store(p) as s:  # the next open migrates from v0
        s.put_generations([_gen(0, _record(0), "river")])
        assert len(s.search("river")) == 1
        assert dict(s.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
