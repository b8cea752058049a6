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


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2)
SCHEMA_VERSION = len(MIGRATIONS)
READABLE_FROM = 1  # read-only opens accept v1 and later (v2 only added indexes)
