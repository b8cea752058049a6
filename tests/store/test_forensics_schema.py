"""Schema v5: the flip_forensics cache; a v4 cache migrates (writable) or reads as having none (read-only)."""

from __future__ import annotations

import sqlite3

import pytest

from ctrust_tui.store import SCHEMA_VERSION, open_store
from ctrust_tui.store.schema import MIGRATIONS


def _v4_cache(path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for migrate in MIGRATIONS[:4]:
        with conn:
            migrate(conn)
    conn.execute("INSERT INTO meta VALUES ('app','ctrust'), ('schema_version','4')")
    conn.commit()
    conn.close()


def test_v4_cache_reads_read_only_with_no_forensics_and_is_not_written(tmp_path):
    p = tmp_path / "v4.db"
    _v4_cache(p)
    before = p.read_bytes()
    with open_store(p, readonly=True) as ro:
        assert ro.forensics([("a", "b")], 1) == {}
    assert p.read_bytes() == before


def test_v4_cache_migrates_and_forensics_round_trip(tmp_path):
    p = tmp_path / "v4.db"
    _v4_cache(p)
    assert SCHEMA_VERSION == 5
    with open_store(p) as s:
        assert dict(s.conn.execute("SELECT key, value FROM meta"))["schema_version"] == "5"
        s.put_forensics([("a", "b", 1, {"status": "identical", "p": 0.25})])
        s.put_forensics([("a", "b", 1, {"status": "diverged", "position": 3})])  # replaces
        assert s.forensics([("a", "b"), ("a", "c")], 1) == {("a", "b"): {"status": "diverged", "position": 3}}
        assert s.forensics([("a", "b")], 2) == {}  # another method version is a miss, recomputed
        s.conn.execute("UPDATE flip_forensics SET data = 'not json'")
        s.conn.commit()
        assert s.forensics([("a", "b")], 1) == {}  # a damaged row is a miss, never an error
    with open_store(p, readonly=True) as ro:  # a v5 cache reads its table read-only
        assert ro.forensics([("a", "b")], 1) == {}


def test_v5_migration_failure_leaves_v4(tmp_path):
    p = tmp_path / "v4.db"
    _v4_cache(p)
    conn = sqlite3.connect(p)
    real = conn.execute

    class Proxy:
        in_transaction = property(lambda self: conn.in_transaction)

        def execute(self, sql, *a):
            if "CREATE TABLE" in sql:
                raise RuntimeError("killed")
            return real(sql, *a)

    with pytest.raises(RuntimeError):
        with conn:
            MIGRATIONS[4](Proxy())  # type: ignore[arg-type]
    conn.close()
    with open_store(p, readonly=True) as ro:
        assert ro.forensics([("a", "b")], 1) == {}
    with open_store(p) as s:  # the next writable open finishes the migration
        s.put_forensics([("a", "b", 1, {"ok": True})])
        assert s.forensics([("a", "b")], 1) == {("a", "b"): {"ok": True}}
