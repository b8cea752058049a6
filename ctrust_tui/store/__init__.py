"""SQLite cache (pure Python, never imports torch)."""

from .db import ItemRow, RunRow, ScoreRow, Store, generation_key, open_store
from .schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "ItemRow", "RunRow", "ScoreRow", "Store", "generation_key", "open_store"]
