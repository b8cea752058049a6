"""SQLite schema with a version row and forward-only migrations.

Each migration is a function applied in one transaction; `meta.schema_version` records the
last one applied. A database with a newer version, or without our `meta.app` marker, is
refused before anything is written, so a wrong `--db` can never be damaged.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

APP_MARKER = "ctrust"


def _v1(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS models (
            fingerprint TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            path TEXT,
            metadata TEXT,
            first_seen TEXT
        );
        CREATE TABLE IF NOT EXISTS runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            settings_hash TEXT NOT NULL UNIQUE,
            model_name TEXT NOT NULL,
            model_fingerprint TEXT NOT NULL,
            compression TEXT NOT NULL,
            dimensions TEXT NOT NULL,
            profile TEXT NOT NULL,
            seed INTEGER NOT NULL,
            scorer TEXT,
            settings TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            total_generations INTEGER DEFAULT 0,
            done_generations INTEGER DEFAULT 0,
            env TEXT,
            error TEXT
        );
        CREATE INDEX IF NOT EXISTS runs_model ON runs(model_name, compression);
        CREATE TABLE IF NOT EXISTS prompts (
            prompt_key TEXT PRIMARY KEY,
            record_id TEXT NOT NULL,
            dimension TEXT NOT NULL,
            scenario TEXT NOT NULL,
            record TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS run_prompts (
            run_id INTEGER NOT NULL,
            prompt_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (run_id, prompt_key)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS generations (
            key TEXT PRIMARY KEY,
            model_fingerprint TEXT NOT NULL,
            compression TEXT NOT NULL,
            prompt_key TEXT NOT NULL,
            rendered_hash TEXT NOT NULL,
            decoding TEXT NOT NULL,
            sample_index INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            output TEXT NOT NULL,
            n_tokens INTEGER,
            finish TEXT,
            seconds REAL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS generations_prompt ON generations(prompt_key);
        CREATE TABLE IF NOT EXISTS verdicts (
            run_id INTEGER NOT NULL,
            prompt_key TEXT NOT NULL,
            record_id TEXT NOT NULL,
            dimension TEXT NOT NULL,
            scenario TEXT NOT NULL,
            verdict TEXT NOT NULL,
            refusal INTEGER NOT NULL,
            correct INTEGER,
            leak INTEGER,
            data TEXT NOT NULL,
            scorer TEXT,
            PRIMARY KEY (run_id, prompt_key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS verdicts_dim ON verdicts(run_id, dimension, scenario);
        CREATE INDEX IF NOT EXISTS verdicts_record ON verdicts(record_id);
        CREATE TABLE IF NOT EXISTS scores (
            run_id INTEGER NOT NULL,
            dimension TEXT NOT NULL,
            score REAL,
            ci_low REAL,
            ci_high REAL,
            refusal_rate REAL,
            n INTEGER NOT NULL,
            total INTEGER,
            scenarios TEXT,
            scorer TEXT,
            final INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (run_id, dimension)
        ) WITHOUT ROWID;
        CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5(
            output, content='generations', content_rowid='rowid'
        );
        CREATE TRIGGER IF NOT EXISTS generations_ai AFTER INSERT ON generations BEGIN
            INSERT INTO generations_fts(rowid, output) VALUES (new.rowid, new.output);
        END;
        CREATE TRIGGER IF NOT EXISTS generations_ad AFTER DELETE ON generations BEGIN
            INSERT INTO generations_fts(generations_fts, rowid, output) VALUES ('delete', old.rowid, old.output);
        END;
        CREATE TRIGGER IF NOT EXISTS generations_au AFTER UPDATE ON generations BEGIN
            INSERT INTO generations_fts(generations_fts, rowid, output) VALUES ('delete', old.rowid, old.output);
            INSERT INTO generations_fts(rowid, output) VALUES (new.rowid, new.output);
        END;
        """
    )


def _v2(conn: sqlite3.Connection) -> None:
    """Indexes for opening a run on a large cache without scanning: a run's outputs are looked up
    per prompt by (prompt_key, model, compression, seed) in sample order, and a run's prompts are
    paged in run order."""
    conn.executescript(
        """
        CREATE INDEX IF NOT EXISTS generations_lookup
            ON generations(prompt_key, model_fingerprint, compression, seed, sample_index);
        DROP INDEX IF EXISTS generations_prompt;
        CREATE INDEX IF NOT EXISTS run_prompts_position ON run_prompts(run_id, position);
        """
    )


def _v3(conn: sqlite3.Connection) -> None:
    """Verdicts and scores per rule set (`paper` / `robust`, trust/rules.py), with the rules version.

    The primary keys gain `rules`, which SQLite cannot alter in place, so both tables are rebuilt
    (kept WITHOUT ROWID: verdicts are read by primary-key range, sqlite-utils' `transform` would drop
    that clause). Rows written before rule sets existed were made by today's robust parser, version 1.
    One explicit transaction: a kill leaves either v2 or v3, never half of each.
    """
    cols = {r[1] for r in conn.execute("PRAGMA table_info(verdicts)")}
    if "rules" in cols:  # already migrated (the version bump is in the same transaction; defensive)
        return
    if not conn.in_transaction:  # DDL does not open Python's implicit transaction: open it explicitly
        conn.execute("BEGIN")
    statements = [
        "DROP TABLE IF EXISTS verdicts_v3",
        "DROP TABLE IF EXISTS scores_v3",
        """CREATE TABLE verdicts_v3 (
            run_id INTEGER NOT NULL,
            prompt_key TEXT NOT NULL,
            rules TEXT NOT NULL,
            rules_version INTEGER NOT NULL,
            record_id TEXT NOT NULL,
            dimension TEXT NOT NULL,
            scenario TEXT NOT NULL,
            verdict TEXT NOT NULL,
            refusal INTEGER NOT NULL,
            correct INTEGER,
            leak INTEGER,
            data TEXT NOT NULL,
            scorer TEXT,
            PRIMARY KEY (run_id, prompt_key, rules)
        ) WITHOUT ROWID""",
        "INSERT INTO verdicts_v3 SELECT run_id, prompt_key, 'robust', 1, record_id, dimension, scenario, verdict,"
        " refusal, correct, leak, data, scorer FROM verdicts",
        "DROP TABLE verdicts",
        "ALTER TABLE verdicts_v3 RENAME TO verdicts",
        "CREATE INDEX verdicts_dim ON verdicts(run_id, rules, dimension, scenario)",
        "CREATE INDEX verdicts_record ON verdicts(record_id)",
        """CREATE TABLE scores_v3 (
            run_id INTEGER NOT NULL,
            dimension TEXT NOT NULL,
            rules TEXT NOT NULL,
            rules_version INTEGER NOT NULL,
            score REAL,
            ci_low REAL,
            ci_high REAL,
            refusal_rate REAL,
            refusal_phrase_rate REAL,
            n INTEGER NOT NULL,
            total INTEGER,
            scenarios TEXT,
            scorer TEXT,
            final INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (run_id, dimension, rules)
        ) WITHOUT ROWID""",
        "INSERT INTO scores_v3 SELECT run_id, dimension, 'robust', 1, score, ci_low, ci_high, refusal_rate, NULL, n,"
        " total, scenarios, scorer, final, updated_at FROM scores",
        "DROP TABLE scores",
        "ALTER TABLE scores_v3 RENAME TO scores",
    ]
    for sql in statements:
        conn.execute(sql)


def _v4(conn: sqlite3.Connection) -> None:
    """Generations remember the engine settings that change outputs beyond their key's other
    columns (store.db.engine_tag: the dtype unless float32, the prompt format unless the model's),
    so a run's outputs are read back without those of another precision or rendering. Earlier rows
    were all float32 / the model's template on CPU: '' (ADD COLUMN is one atomic statement)."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(generations)")}
    if "engine" not in cols:
        conn.execute("ALTER TABLE generations ADD COLUMN engine TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE INDEX IF NOT EXISTS generations_run_lookup"
                 " ON generations(prompt_key, model_fingerprint, compression, seed, engine, sample_index)")
    conn.execute("DROP INDEX IF EXISTS generations_lookup")


FORENSICS_COLUMNS = "base_key, variant_key, method, data, created_at"


def _v5(conn: sqlite3.Connection) -> None:
    """Flip forensics (forensics.py): one teacher-forced forward per model and flipped prompt, cached.

    Keyed by the two generation keys (content addresses of weights, prompt, decoding, sample, seed):
    the same pair of outputs always gives the same forensics, whatever runs they belong to. `method`
    is the forensics code's version; a row from another version is recomputed, not served. One new
    table in one transaction: a kill leaves v4 or v5, never half.
    """
    if not conn.in_transaction:
        conn.execute("BEGIN")
    conn.execute(
        """CREATE TABLE IF NOT EXISTS flip_forensics (
            base_key TEXT NOT NULL,
            variant_key TEXT NOT NULL,
            method INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (base_key, variant_key)
        ) WITHOUT ROWID""")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5)
SCHEMA_VERSION = len(MIGRATIONS)
READABLE_FROM = 1  # read-only opens accept v1 and later: older versions are read through legacy_views


def legacy_views(conn: sqlite3.Connection, version: int) -> None:
    """Read an older cache without writing it: TEMP views with today's columns shadow the old tables
    (a read-only connection can still create temp objects; unqualified names resolve to temp first).
    Pre-v3 verdicts and scores were made by the robust parser, version 1; a pre-v4 cache has no
    cached forensics (an empty view); a pre-v4 cache's generations have no engine column (the
    reader checks, store.db.Store._generations_have_engine)."""
    if version < 5:
        conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS flip_forensics({FORENSICS_COLUMNS}) AS "
                     "SELECT NULL, NULL, NULL, NULL, NULL WHERE 0")
    if version >= 3:
        return
    conn.execute(
        "CREATE TEMP VIEW IF NOT EXISTS verdicts AS SELECT run_id, prompt_key, 'robust' AS rules, 1 AS rules_version,"
        " record_id, dimension, scenario, verdict, refusal, correct, leak, data, scorer FROM main.verdicts")
    conn.execute(
        "CREATE TEMP VIEW IF NOT EXISTS scores AS SELECT run_id, dimension, 'robust' AS rules, 1 AS rules_version,"
        " score, ci_low, ci_high, refusal_rate, NULL AS refusal_phrase_rate, n, total, scenarios, scorer, final,"
        " updated_at FROM main.scores")
