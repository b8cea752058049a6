"""Where ctrust keeps things on disk: the model store and the SQLite cache.

Both default to the current directory (the README runs everything from the repo root) and
can be moved with environment variables, so scripts and CI never depend on a user's home.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV = "CTRUST_DB"
MODELS_ENV = "CTRUST_MODELS"
DEFAULT_DB_NAME = "cache.db"
DEFAULT_MODELS_DIR = "models"


def default_db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The cache path: `--db` wins, then `$CTRUST_DB`, then `./cache.db`."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser()
    return Path.cwd() / DEFAULT_DB_NAME


def models_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The local model store: `--models-dir` wins, then `$CTRUST_MODELS`, then `./models`."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    return Path.cwd() / DEFAULT_MODELS_DIR
