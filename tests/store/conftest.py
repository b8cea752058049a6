"""`CTRUST_TEST_CACHE_FROM=1` (or 4): every cache a store test creates starts as one written by the
pre-sqlite-utils schema at that version (legacy_caches.py) and is migrated on open, so the whole
store suite runs on migrated caches too:

    CTRUST_TEST_CACHE_FROM=1 pytest tests/store
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from legacy_caches import make_legacy_cache

from ctrust_tui.store.db import Store


@pytest.fixture(autouse=True)
def _caches_start_legacy(monkeypatch: pytest.MonkeyPatch) -> None:
    version = os.environ.get("CTRUST_TEST_CACHE_FROM")
    if not version:
        return
    real = Store.__init__

    def init(self: Store, path: Path, *, readonly: bool = False) -> None:
        p = Path(path)
        if not readonly and not p.exists() and p.parent.is_dir() and os.access(p.parent, os.W_OK):
            make_legacy_cache(p, int(version))
        real(self, path, readonly=readonly)

    monkeypatch.setattr(Store, "__init__", init)
