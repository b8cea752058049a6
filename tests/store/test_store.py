"""Durability and safety of the SQLite cache: schema, refusal of foreign files, read-only use,
FTS safety, concurrent reader/writer (WAL), and clear errors on unwritable disks."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctrust_tui.errors import StoreError
from ctrust_tui.store import SCHEMA_VERSION, open_store
from ctrust_tui.store.lib import library
from ctrust_tui.store.schema import MIGRATIONS
from ctrust_tui.trust.types import Decoding, Message, PromptRecord, Verdict

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gen_rows(n: int, start: int = 0, prompt_key: str = "pk", outputs=None) -> list[dict]:
    return [
        {"key": f"g{start + i:07d}", "model_fingerprint": "fp", "compression": "none", "prompt_key": prompt_key,
         "rendered_hash": "rh", "decoding": {"max_new_tokens": 8}, "sample_index": start + i, "seed": 0,
         "output": outputs[i] if outputs else f"output number {start + i}", "n_tokens": 3, "finish": "eos",
         "seconds": 0.01}
        for i in range(n)
    ]


def record(i: int) -> PromptRecord:
    return PromptRecord(f"r{i}", "ethics", "zero", (Message("user", f"is act {i} wrong?"),), Decoding(8))


def foreign_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers(name) VALUES ('alice'), ('bob')")
    conn.commit()
    conn.close()
    return path


# -- schema -------------------------------------------------------------------------
def test_new_file_gets_version_row_and_tables(tmp_path):
    with open_store(tmp_path / "c.db") as s:
        meta = dict(s.conn.execute("SELECT key, value FROM meta"))
        assert meta == {"app": "ctrust", "schema_version": str(SCHEMA_VERSION)}
        names = set(s.db.table_names())
        assert {"runs", "prompts", "run_prompts", "generations", "verdicts", "scores", "generations_fts"} <= names
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.integrity_ok()
    with open_store(tmp_path / "c.db") as s:  # reopening is a no-op
        assert dict(s.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)


def test_empty_zero_byte_file_is_migrated(tmp_path):
    p = tmp_path / "empty.db"
    p.write_bytes(b"")
    with open_store(p) as s:
        assert s.counts()["generations"] == 0
        assert s.integrity_ok()


def test_migration_from_v1_keeps_data_and_adds_indexes(tmp_path):
    p = tmp_path / "v1.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    MIGRATIONS[0](conn)
    conn.execute("INSERT INTO meta VALUES ('app','ctrust'), ('schema_version','1')")
    conn.commit()
    conn.close()
    with open_store(p, readonly=True) as ro:  # v1 is readable as it is
        assert ro.counts()["generations"] == 0
    with open_store(p) as s:
        s.put_generations(gen_rows(3))
    with open_store(p) as s:
        assert dict(s.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
        idx = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"generations_run_lookup", "run_prompts_position"} <= idx
        assert s.counts()["generations"] == 3


def test_run_items_uses_indexes(tmp_path):
    with open_store(tmp_path / "c.db") as s:
        plan = " ".join(r[3] for r in s.conn.execute(
            "EXPLAIN QUERY PLAN SELECT output FROM generations g WHERE g.prompt_key=? AND g.model_fingerprint=?"
            " AND g.compression=? AND g.seed=? AND g.engine = ? ORDER BY g.sample_index", ("a", "b", "c", 0, "")))
        assert "generations_run_lookup" in plan and "TEMP B-TREE" not in plan
        # a record without outputs of its own looks for a twin among its dimension's prompts, by index
        plan = " ".join(r[3] for r in s.conn.execute(
            "EXPLAIN QUERY PLAN SELECT DISTINCT p.prompt_key, p.record FROM generations g JOIN prompts p"
            " ON p.prompt_key = g.prompt_key WHERE p.dimension IN (?) AND g.model_fingerprint=? AND g.compression=?"
            " AND g.seed=? AND g.engine = ?", ("ethics", "b", "c", 0, "")))
        assert "SCAN g" not in plan and "SCAN generations" not in plan, plan


# -- refusing files that are not ours -----------------------------------------------
@pytest.mark.parametrize("readonly", [False, True])
def test_foreign_sqlite_file_refused_and_untouched(tmp_path, readonly):
    p = foreign_db(tmp_path / "other.db")
    before = digest(p)
    with pytest.raises(StoreError, match="not a ctrust cache"):
        open_store(p, readonly=readonly)
    assert digest(p) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["other.db"]


def test_meta_table_of_another_app_refused(tmp_path):
    p = tmp_path / "meta.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('app', 'something-else')")
    conn.commit()
    conn.close()
    before = digest(p)
    with pytest.raises(StoreError, match="not a ctrust cache"):
        open_store(p)
    assert digest(p) == before


def test_not_sqlite_at_all_refused_and_untouched(tmp_path):
    p = tmp_path / "notes.db"
    p.write_text("these are my notes, not a database\n" * 200)
    before = digest(p)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(p)
    assert digest(p) == before


def test_newer_schema_refused_and_untouched(tmp_path):
    p = tmp_path / "new.db"
    with open_store(p) as s:
        s.put_generations(gen_rows(2))
        s.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
        s.conn.commit()
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = digest(p)
    for ro in (False, True):
        with pytest.raises(StoreError, match="newer ctrust"):
            open_store(p, readonly=ro)
    assert digest(p) == before


# -- read-only use ------------------------------------------------------------------
def test_readonly_missing_file_clear_error(tmp_path):
    p = tmp_path / "nope.db"
    with pytest.raises(StoreError, match="no such cache file"):
        open_store(p, readonly=True)
    assert not p.exists()


def test_readonly_store_cannot_write(tmp_path):
    p = tmp_path / "c.db"
    with open_store(p) as s:
        s.put_generations(gen_rows(2))
    before = digest(p)
    with open_store(p, readonly=True) as ro:
        assert ro.counts()["generations"] == 2
        with pytest.raises(StoreError, match="read-only"):
            ro.put_generations(gen_rows(1, start=10))
        with pytest.raises(StoreError, match="read-only"):
            ro.upsert_model("fp", "m", "/x", {})
        with pytest.raises(sqlite3.Error):  # even raw SQL cannot write
            ro.conn.execute("DELETE FROM generations")
    assert digest(p) == before


# -- full-text search ---------------------------------------------------------------
def test_fts_finds_outputs_and_ignores_query_syntax(tmp_path):
    outs = ["I cannot help with that request", "The answer is NEAR the river", "star * power - minus",
            'he said "wrong" twice', "col:value and (parens)"]
    with open_store(tmp_path / "c.db") as s:
        s.put_generations(gen_rows(len(outs), outputs=outs))
        assert [r["output"] for r in s.search("cannot help")] == [outs[0]]
        assert [r["output"] for r in s.search("river")] == [outs[1]]
        assert s.search("nothing-like-this") == []
        for q in ['"wrong', 'wrong"', "NEAR(answer river)", "answer NEAR river", "star*", "*", "-minus",
                  "- minus", "a OR b", "NOT x", "AND", "col:value", "(parens", "^star", "'", "\"\"", "  ", "",
                  "{x y}", "+", "river)"]:
            s.search(q)  # never an FTS syntax error
        assert [r["output"] for r in s.search('"wrong"')] == [outs[3]]
        assert [r["output"] for r in s.search("NEAR")] == [outs[1]]
        assert s.search("*") == [] and s.search("") == []


# -- concurrency (WAL) --------------------------------------------------------------
def test_reader_consistent_while_writer_inserts(tmp_path):
    p = tmp_path / "c.db"
    open_store(p).close()
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            with open_store(p) as w:
                for b in range(40):
                    w.put_generations(gen_rows(25, start=b * 25, prompt_key=f"pk{b}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    seen: list[int] = []
    t = threading.Thread(target=writer)
    t.start()
    with open_store(p, readonly=True) as r:
        while not done.is_set() or len(seen) < 3:
            with r.conn:  # one read transaction: both counts see the same snapshot
                r.conn.execute("BEGIN")
                n = r.conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
                n_fts = r.conn.execute("SELECT COUNT(*) FROM generations_fts").fetchone()[0]
            assert n == n_fts  # each batch is committed atomically, index included
            assert n % 25 == 0
            seen.append(n)
            if done.is_set() and len(seen) >= 3:
                break
    t.join()
    assert not errors, errors
    assert seen == sorted(seen)
    with open_store(p, readonly=True) as r:
        assert r.counts()["generations"] == 1000
        assert r.integrity_ok()


def test_reader_in_another_process(tmp_path):
    import subprocess

    p = tmp_path / "c.db"
    with open_store(p) as w:
        w.put_generations(gen_rows(10))
        code = ("import sys; from ctrust_tui.store import open_store\n"
                "s = open_store(sys.argv[1], readonly=True)\n"
                "print(s.counts()['generations'], s.integrity_ok(), 'torch' in sys.modules)\n")
        w.conn.execute("BEGIN IMMEDIATE")  # writer holds an open write transaction
        w.conn.execute("DELETE FROM generations WHERE key='g0000000'")
        out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=60, check=False)
        w.conn.rollback()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["10", "True", "False"]  # reader sees the last commit; store never imports torch


# -- unwritable disks ---------------------------------------------------------------
@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_readonly_file_and_directory_clear_error_data_survives(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    p = d / "c.db"
    with open_store(p) as s:
        s.put_generations(gen_rows(5))
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in d.glob("c.db-*"):
        extra.unlink()
    os.chmod(p, 0o444)
    os.chmod(d, 0o555)
    try:
        with pytest.raises(StoreError) as ei:
            s = open_store(p)
            try:
                s.put_generations(gen_rows(1, start=99))
            finally:
                s.close()
        assert "read-only" in str(ei.value) or "cannot open" in str(ei.value)
    finally:
        os.chmod(d, 0o755)
        os.chmod(p, 0o644)
    with open_store(p) as s:
        assert s.counts()["generations"] == 5 and s.integrity_ok()


class _FailingConn:
    """Wraps a sqlite3 connection; writes fail with the given SQLite error (full disk, read-only)."""

    def __init__(self, conn: sqlite3.Connection, message: str) -> None:
        self._conn = conn
        self._message = message

    def executemany(self, *a, **kw):
        raise sqlite3.OperationalError(self._message)

    def execute(self, sql, *a, **kw):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError(self._message)
        return self._conn.execute(sql, *a, **kw)

    def __enter__(self):
        return self._conn.__enter__()

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest.mark.parametrize("message,expect", [
    ("database or disk is full", "disk is full"),
    ("attempt to write a readonly database", "read-only"),
    ("disk I/O error", "disk I/O error"),
])
def test_write_failures_are_clear_and_keep_existing_data(tmp_path, message, expect):
    p = tmp_path / "c.db"
    with open_store(p) as s:
        s.put_generations(gen_rows(4))
    s = open_store(p)
    real, real_db = s.conn, s.db
    s.conn = _FailingConn(real, message)
    s.db = library(s.conn)  # writes go through sqlite-utils on the same (failing) connection
    with pytest.raises(StoreError, match=expect) as ei:
        s.put_generations(gen_rows(3, start=50))
    assert "\n" not in str(ei.value)
    with pytest.raises(StoreError, match=expect):
        s.open_run({"a": 1}, model_name="m", model_fingerprint="fp", compression="none", dimensions=["ethics"],
                   profile="smoke", seed=0, scorer=None, env={})
    s.conn, s.db = real, real_db
    s.close()
    with open_store(p) as s2:
        assert s2.counts()["generations"] == 4 and s2.integrity_ok()


def test_real_full_disk_via_max_page_count(tmp_path):
    p = tmp_path / "c.db"
    with open_store(p) as s:
        s.put_generations(gen_rows(3))
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = s.conn.execute("PRAGMA page_count").fetchone()[0]
        s.conn.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: SQLITE_FULL
        big = gen_rows(200, start=100, outputs=["x" * 2000] * 200)
        with pytest.raises(StoreError, match="disk is full"):
            s.put_generations(big)
        assert s.counts()["generations"] == 3
    with open_store(p) as s:
        assert s.counts()["generations"] == 3 and s.integrity_ok()


# -- runs and items -----------------------------------------------------------------
def test_run_items_in_order_with_outputs_and_verdicts(tmp_path):
    with open_store(tmp_path / "c.db") as s:
        rid, resumed = s.open_run({"x": 1}, model_name="m", model_fingerprint="fp", compression="none",
                                  dimensions=["ethics"], profile="smoke", seed=0, scorer=None, env={})
        assert not resumed
        recs = [record(i) for i in range(5)]
        s.add_run_prompts(rid, recs)
        for i, r in enumerate(recs[:3]):
            s.put_generations(gen_rows(1, start=i, prompt_key=r.key))
        s.put_verdicts(rid, [(recs[0], Verdict("wrong", correct=True))], None)
        items = s.run_items(rid, limit=2)
        assert [it.record.id for it in items] == ["r0", "r1"]
        assert items[0].outputs == ("output number 0",) and items[0].verdict.verdict == "wrong"
        assert items[1].verdict is None
        assert [it.record.id for it in s.run_items(rid, limit=10, offset=3)] == ["r3", "r4"]
        assert s.run_items(rid, limit=10, offset=3)[0].outputs == ()
        assert s.open_run({"x": 1}, model_name="m", model_fingerprint="fp", compression="none",
                          dimensions=["ethics"], profile="smoke", seed=0, scorer=None, env={}) == (rid, True)
        s.put_generations(gen_rows(1, start=0, prompt_key=recs[0].key))  # same key: ignored (idempotent)
        assert s.counts()["generations"] == 3


# -- CLI ----------------------------------------------------------------------------
def test_cli_run_on_foreign_db_exits_2_one_line_untouched(tmp_path):
    from ctrust_tui.cli import main

    p = foreign_db(tmp_path / "other.db")
    before = digest(p)
    res = CliRunner().invoke(main, ["run", "--db", str(p), "--dimensions", "ethics", "--limit", "1"])
    assert res.exit_code == 2, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a ctrust cache" in lines[0]
    assert digest(p) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["other.db"]


def test_cli_runs_on_foreign_db_exits_2(tmp_path):
    from ctrust_tui.cli import main

    p = foreign_db(tmp_path / "other.db")
    before = digest(p)
    res = CliRunner().invoke(main, ["runs", "--db", str(p)])
    assert res.exit_code == 2
    assert digest(p) == before


def test_copy_of_cache_is_a_valid_cache(tmp_path):
    p = tmp_path / "c.db"
    with open_store(p) as s:
        s.put_generations(gen_rows(7))
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(p, tmp_path / "copy.db")
    with open_store(tmp_path / "copy.db", readonly=True) as c:
        assert c.counts()["generations"] == 7 and c.integrity_ok()



def test_shown_status_flags_runs_whose_process_is_gone():
    import os
    import socket
    import subprocess
    import sys

    from ctrust_tui.store.db import RunRow

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def row(status, env):
        return RunRow(1, "m", "none", ("ethics",), "smoke", 0, None, status, "", "", 0, 0, {}, env, None)

    host = socket.gethostname()
    assert row("running", {"pid": gone.pid, "host": host}).shown_status == "interrupted"
    assert row("running", {"pid": os.getpid(), "host": host}).shown_status == "running"
    assert row("running", {"pid": gone.pid, "host": "another-machine"}).shown_status == "running"  # can't tell
    assert row("running", {}).shown_status == "running"  # runs recorded before pids were
    assert row("finished", {"pid": gone.pid, "host": host}).shown_status == "finished"


# -- records that ask the same thing share their generations ---------------------------
def _twin(i: int, rid: str, scenario: str, max_new: int = 8) -> PromptRecord:
    return PromptRecord(rid, "ethics", scenario, (Message("user", f"is act {i} wrong?"),), Decoding(max_new),
                        {"label": "wrong", "options": ["wrong", "not wrong"]})


def _run(s, compression: str = "none", tag: int = 0) -> int:
    rid, _ = s.open_run({"t": tag, "c": compression}, model_name="m", model_fingerprint="fp", compression=compression,
                        dimensions=["ethics"], profile="quick", seed=0, scorer=None, env={})
    return rid


def test_a_record_finds_the_outputs_its_twin_cached(tmp_path):
    """The cache is content-addressed: fairness's zero-shot crime items recur under every base rate, and the
    second record's outputs are the row filed under the first's prompt_key (possibly in another run). They
    were invisible to run_items: rescore skipped the record and Browse showed no output."""
    first, twin, other = _twin(1, "a/br0.0/1", "br0.0"), _twin(1, "a/br1.0/7", "br1.0"), _twin(2, "a/br1.0/8", "br1.0")
    assert first.key != twin.key
    with open_store(tmp_path / "c.db") as s:
        run_a = _run(s, tag=1)
        s.add_run_prompts(run_a, [first])
        s.put_generations(gen_rows(1, start=0, prompt_key=first.key, outputs=["the shared answer"]))
        run_b = _run(s, tag=2)
        s.add_run_prompts(run_b, [twin, other])
        s.put_generations(gen_rows(1, start=1, prompt_key=other.key, outputs=["its own answer"]))
        items = {it.record.id: it.outputs for it in s.run_items(run_b)}
        assert items == {"a/br1.0/7": ("the shared answer",), "a/br1.0/8": ("its own answer",)}
        (row,) = s.run_generations(run_b, twin.key)
        assert row.output == "the shared answer" and row.key == "g0000000"
        assert [r.output for r in s.run_generations(run_b, other.key)] == ["its own answer"]


def test_a_twin_counts_only_for_the_same_question_model_and_spec(tmp_path):
    asked = _twin(1, "a/x/1", "x")
    longer = _twin(1, "a/y/1", "y", max_new=16)  # same messages, another decoding: another generation
    other_q = _twin(3, "a/y/2", "y")
    with open_store(tmp_path / "c.db") as s:
        run_a = _run(s, tag=1)
        s.add_run_prompts(run_a, [asked])
        s.put_generations(gen_rows(1, prompt_key=asked.key))
        run_b = _run(s, tag=2)
        s.add_run_prompts(run_b, [longer, other_q])
        assert [it.outputs for it in s.run_items(run_b)] == [(), ()]
        run_c = _run(s, compression="rtn-4b-g32", tag=3)  # the same question to another variant: not its output
        s.add_run_prompts(run_c, [_twin(1, "a/z/1", "z")])
        assert [it.outputs for it in s.run_items(run_c)] == [()]
        assert s.run_generations(run_c, _twin(1, "a/z/1", "z").key) == []


def test_rescore_judges_a_record_whose_outputs_its_twin_cached(tmp_path):
    from ctrust_tui.rescore import rescore_runs

    first, twin = _twin(1, "a/br0.0/1", "br0.0"), _twin(1, "a/br1.0/7", "br1.0")
    p = tmp_path / "c.db"
    with open_store(p) as s:
        run_a = _run(s, tag=1)
        s.add_run_prompts(run_a, [first])
        s.put_generations(gen_rows(1, prompt_key=first.key, outputs=["wrong"]))
        run_b = _run(s, tag=2)
        s.add_run_prompts(run_b, [twin])
        s.set_run_status(run_b, "finished", done=1, total=1)
    (paper, robust) = rescore_runs(p, [run_b], ["paper", "robust"])
    assert (paper.judged, paper.pending) == (1, 0) and (robust.judged, robust.pending) == (1, 0)
    with open_store(p, readonly=True) as s:
        (score,) = [x for x in s.scores([run_b], rules="paper") if x.dimension == "ethics"]
        assert score.n == 1 and score.final
