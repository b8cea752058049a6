"""Trust suite (pure Python, never imports torch): dimensions, prompts, scoring, data."""

from .dimension import Dimension, JudgeContext, Scenario, ToxicityScorer
from .profiles import PROFILES, Profile, get_profile
from .registry import (
    DIMENSION_IDS,
    DIMENSIONS,
    DimensionMeta,
    available_ids,
    dimension_meta,
    get_dimension,
    parse_dimensions,
    verdict_polarity,
)
from .types import Decoding, DimensionResult, Message, PromptRecord, Verdict

__all__ = [
    "DIMENSIONS",
    "DIMENSION_IDS",
    "DimensionMeta",
    "PROFILES",
    "Decoding",
    "Dimension",
    "DimensionResult",
    "JudgeContext",
    "Message",
    "Profile",
    "PromptRecord",
    "Scenario",
    "ToxicityScorer",
    "Verdict",
    "available_ids",
    "dimension_meta",
    "get_dimension",
    "get_profile",
    "parse_dimensions",
    "verdict_polarity",
]
