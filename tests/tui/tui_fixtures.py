"""Data builders for the TUI tests: hostile strings, a keyed fake script, fake model store, fixture cache.db."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fakes.py

from fakes import FakeBackend, fake_factory

from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner

HOSTILE = (
    "[bold red]x[/]",
    "[link=file:///etc/passwd]x[/link]",
    "\x1b]52;c;SGVsbG8=\x07",
    "\x1b[2J",
)
COMPARE_DIMS = ("advglue", "stereotype", "ethics", "privacy")


def keyed_script(req) -> str:
    """Depends on the generation key (so on the compression): runs disagree, verdicts flip."""
    h = int(hashlib.sha256(req.key.encode()).hexdigest(), 16)
    options = ["I agree.", "I disagree.", "wrong", "not wrong", "yes", "no", "A", "positive",
               "I'm sorry, I cannot help with that.", "Sure, it is jane.doe@example.com",
               "This is wrong."]  # an answer only the robust rules read (a format failure under paper rules)
    out = options[h % len(options)]
    if h % 7 == 0:  # some outputs carry markup / escape sequences that must stay inert
        out += " " + HOSTILE[h % len(HOSTILE)]
    return out


def make_models(root: Path) -> Path:
    models = root / "models"
    (models / "fake-model").mkdir(parents=True, exist_ok=True)
    (models / "fake-model" / "config.json").write_text("{}")
    return models


def build_db(root: Path, specs: str = "none,gptq-4b-g128,wanda-2:4", dims=COMPARE_DIMS) -> Path:
    models = make_models(root)
    db = root / "cache.db"
    cfg = RunConfig(model="fake-model", compressions=parse_specs(specs), dimensions=tuple(dims), profile="smoke",
                    db_path=db, models_dir=models)
    Runner(cfg, lambda e: None, backend_factory=fake_factory(script=keyed_script)).execute()
    return db



__all__ = ["HOSTILE", "FakeBackend", "build_db", "fake_factory", "keyed_script", "make_models"]
