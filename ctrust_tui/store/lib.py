"""sqlite-utils on the store's connection, with the store deciding where transactions end.

sqlite-utils commits as it goes: `with conn:` after every insert chunk (at most 999 variables,
so 71 generations), around `Table.create` and `transform`, and Python's `executescript` commits
before it runs (`enable_fts`, `populate_fts`). The store promises one transaction per write batch
and per migration (a kill leaves version N or N+1, never half), so sqlite-utils is handed
the connection through `HeldCommits`: there `with` commits nothing and a script runs statement
by statement, and the store's own `with conn:` commits once. Measured on 2,000-row batches of
generations (benchmarks/bench_store.py, two runs): committing every 71 rows ran at 0.83-0.84 of
the throughput of one commit per batch (13.2k vs 15.9k generations/s).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlite_utils


class HeldCommits:
    """A sqlite3 connection (or a test's stand-in with `execute`) whose `with` block and
    `executescript` do not commit; everything else is the connection's."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        object.__setattr__(self, "_conn", conn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __enter__(self) -> "HeldCommits":
        return self

    def __exit__(self, *exc: object) -> bool:
        return False  # the caller's transaction commits or rolls back, not sqlite-utils

    def executescript(self, script: str) -> None:
        """Run each complete statement with `execute` (no implicit COMMIT first); trigger
        bodies stay whole because `sqlite3.complete_statement` knows CREATE TRIGGER ... END."""
        stmt = ""
        for line in script.splitlines(keepends=True):
            stmt += line
            if sqlite3.complete_statement(stmt):
                self._conn.execute(stmt)
                stmt = ""
        if stmt.strip():
            self._conn.execute(stmt)


def library(conn: Any) -> sqlite_utils.Database:
    """sqlite-utils over `conn`, committing only where the caller commits. Its default
    `PRAGMA recursive_triggers=on` is kept: an INSERT OR REPLACE on generations then fires the
    delete trigger, so the external-content FTS index never keeps a replaced row's words."""
    return sqlite_utils.Database(HeldCommits(conn))
