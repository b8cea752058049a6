"""Caches as ctrust wrote them before the store moved to sqlite-utils (commit 848a4e7): the
`sqlite_master` statements of a v1 and of a v4 cache made by the hand-written DDL, frozen here so
migration tests start from real on-disk schemas, not from today's migration functions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

_MODELS = "CREATE TABLE models (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT, metadata TEXT, first_seen TEXT)"
_RUNS = """CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, settings_hash TEXT NOT NULL UNIQUE,
    model_name TEXT NOT NULL, model_fingerprint TEXT NOT NULL, compression TEXT NOT NULL, dimensions TEXT NOT NULL,
    profile TEXT NOT NULL, seed INTEGER NOT NULL, scorer TEXT, settings TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    total_generations INTEGER DEFAULT 0, done_generations INTEGER DEFAULT 0, env TEXT, error TEXT)"""
_PROMPTS = """CREATE TABLE prompts (prompt_key TEXT PRIMARY KEY, record_id TEXT NOT NULL, dimension TEXT NOT NULL,
    scenario TEXT NOT NULL, record TEXT NOT NULL)"""
_RUN_PROMPTS = """CREATE TABLE run_prompts (run_id INTEGER NOT NULL, prompt_key TEXT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (run_id, prompt_key)) WITHOUT ROWID"""
_GENERATIONS = """CREATE TABLE generations (key TEXT PRIMARY KEY, model_fingerprint TEXT NOT NULL,
    compression TEXT NOT NULL, prompt_key TEXT NOT NULL, rendered_hash TEXT NOT NULL, decoding TEXT NOT NULL,
    sample_index INTEGER NOT NULL, seed INTEGER NOT NULL, output TEXT NOT NULL, n_tokens INTEGER, finish TEXT,
    seconds REAL, created_at TEXT NOT NULL{engine})"""
_FTS = [
    "CREATE VIRTUAL TABLE generations_fts USING fts5(output, content='generations', content_rowid='rowid')",
    "CREATE TRIGGER generations_ai AFTER INSERT ON generations BEGIN"
    " INSERT INTO generations_fts(rowid, output) VALUES (new.rowid, new.output); END",
    "CREATE TRIGGER generations_ad AFTER DELETE ON generations BEGIN"
    " INSERT INTO generations_fts(generations_fts, rowid, output) VALUES ('delete', old.rowid, old.output); END",
    "CREATE TRIGGER generations_au AFTER UPDATE ON generations BEGIN"
    " INSERT INTO generations_fts(generations_fts, rowid, output) VALUES ('delete', old.rowid, old.output);"
    " INSERT INTO generations_fts(rowid, output) VALUES (new.rowid, new.output); END",
]

LEGACY_V1 = [
    _MODELS, _RUNS, _PROMPTS, _RUN_PROMPTS, _GENERATIONS.format(engine=""),
    """CREATE TABLE verdicts (run_id INTEGER NOT NULL, prompt_key TEXT NOT NULL, record_id TEXT NOT NULL,
        dimension TEXT NOT NULL, scenario TEXT NOT NULL, verdict TEXT NOT NULL, refusal INTEGER NOT NULL,
        correct INTEGER, leak INTEGER, data TEXT NOT NULL, scorer TEXT, PRIMARY KEY (run_id, prompt_key)) WITHOUT ROWID""",
    """CREATE TABLE scores (run_id INTEGER NOT NULL, dimension TEXT NOT NULL, score REAL, ci_low REAL, ci_high REAL,
        refusal_rate REAL, n INTEGER NOT NULL, total INTEGER, scenarios TEXT, scorer TEXT,
        final INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, dimension)) WITHOUT ROWID""",
    *_FTS,
    "CREATE INDEX runs_model ON runs(model_name, compression)",
    "CREATE INDEX generations_prompt ON generations(prompt_key)",
    "CREATE INDEX verdicts_dim ON verdicts(run_id, dimension, scenario)",
    "CREATE INDEX verdicts_record ON verdicts(record_id)",
]

LEGACY_V4 = [
    _MODELS, _RUNS, _PROMPTS, _RUN_PROMPTS, _GENERATIONS.format(engine=", engine TEXT NOT NULL DEFAULT ''"),
    """CREATE TABLE "verdicts" (run_id INTEGER NOT NULL, prompt_key TEXT NOT NULL, rules TEXT NOT NULL,
        rules_version INTEGER NOT NULL, record_id TEXT NOT NULL, dimension TEXT NOT NULL, scenario TEXT NOT NULL,
        verdict TEXT NOT NULL, refusal INTEGER NOT NULL, correct INTEGER, leak INTEGER, data TEXT NOT NULL, scorer TEXT,
        PRIMARY KEY (run_id, prompt_key, rules)) WITHOUT ROWID""",
    """CREATE TABLE "scores" (run_id INTEGER NOT NULL, dimension TEXT NOT NULL, rules TEXT NOT NULL,
        rules_version INTEGER NOT NULL, score REAL, ci_low REAL, ci_high REAL, refusal_rate REAL,
        refusal_phrase_rate REAL, n INTEGER NOT NULL, total INTEGER, scenarios TEXT, scorer TEXT,
        final INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, dimension, rules)) WITHOUT ROWID""",
    *_FTS,
    "CREATE INDEX runs_model ON runs(model_name, compression)",
    "CREATE INDEX run_prompts_position ON run_prompts(run_id, position)",
    "CREATE INDEX verdicts_dim ON verdicts(run_id, rules, dimension, scenario)",
    "CREATE INDEX verdicts_record ON verdicts(record_id)",
    "CREATE INDEX generations_run_lookup ON generations(prompt_key, model_fingerprint, compression, seed, engine,"
    " sample_index)",
]

LEGACY = {1: LEGACY_V1, 4: LEGACY_V4}


def make_legacy_cache(path: Path, version: int) -> Path:
    """An empty cache at `version` (1 or 4) with the pre-sqlite-utils schema."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for sql in LEGACY[version]:
            conn.execute(sql)
        conn.execute("INSERT INTO meta VALUES ('app', 'ctrust'), ('schema_version', ?)", (str(version),))
    conn.close()
    return path
