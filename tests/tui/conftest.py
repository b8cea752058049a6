"""Fixtures for the TUI tests (builders live in tui_fixtures.py; tests/conftest.py is shared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tui_fixtures import build_db, make_models


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory) -> Path:
    """Three finished fake runs (dense, gptq-4b, wanda-2:4) of one model; never modified by tests."""
    root = tmp_path_factory.mktemp("fixture")
    return build_db(root)


@pytest.fixture
def models_dir(tmp_path) -> Path:
    return make_models(tmp_path)


@pytest.fixture
def copy_db(fixture_db, tmp_path) -> Path:
    dst = tmp_path / "cache.db"
    shutil.copy(fixture_db, dst)
    return dst


@pytest.fixture
def no_blink(monkeypatch):
    """Deterministic snapshots: no cursor blink."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "cursor_blink", False, raising=False)
