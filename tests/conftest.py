"""Shared fixtures: a temp model store with a stub model folder, temp cache paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Tests compare generations with fp32 references: pin what `--dtype auto` means (engine.dtype reads
# it, subprocesses inherit it), so a CI machine where bf16 happens to be faster runs the same
# precision as every other. Tests of the auto rule itself clear it.
os.environ.setdefault("CTRUST_DTYPE", "fp32")


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

