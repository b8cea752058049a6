"""Trust suite (pure Python, never imports torch): dimensions, prompts, scoring, data."""

from .dimension import Dimension, JudgeContext, Scenario, ToxicityScorer
from .profiles import PROFILES, Profile, get_profile
from .registry import DIMENSION_IDS, available_ids, get_dimension, parse_dimensions
from .types import Decoding, DimensionResult, Message, PromptRecord, Verdict

__all__ = [
    "DIMENSION_IDS",
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
    "get_dimension",
    "get_profile",
    "parse_dimensions",
]
