"""The one place a toxicity scorer is built from its name (runner, `ctrust score`, Inspect).

`profanity` (default, offline) and `perspective` (the paper's online scorer) live in the pure trust
layer; a local Hugging Face classifier folder needs torch, so it lives in the engine. This module
sits above both, so the trust layer never reaches into the engine to build one.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CtrustError
from .trust.dimension import ToxicityScorer
from .trust.toxicity_scorers import PERSPECTIVE_ENV, PerspectiveScorer, ProfanityScorer


def resolve_toxicity_scorer(name: str | None = None) -> ToxicityScorer:
    """'profanity' (default), 'perspective', or a path to a local HF sequence-classification folder."""
    choice = (name or "profanity").strip()
    if choice == "profanity":
        return ProfanityScorer()
    if choice == "perspective":
        return PerspectiveScorer.from_env()
    path = Path(choice).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CtrustError(f"toxicity scorer folder {path} has no config.json (expected a HF classifier)")
        from .engine.toxicity_hf import HFToxicityScorer  # torch only when asked for

        return HFToxicityScorer.from_folder(path)
    raise CtrustError(
        f"unknown toxicity scorer {choice!r}: use 'profanity', 'perspective' (needs ${PERSPECTIVE_ENV}) "
        "or the path of a local Hugging Face sequence-classification folder"
    )
