"""Shared fixtures: a temp model store with a stub model folder, temp cache paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def stub_models(tmp_path: Path) -> Path:
    """A models/ dir with one folder that `resolve_model` accepts (used with the fake backend)."""
    d = tmp_path / "models" / "stub-model"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return d.parent

@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"

