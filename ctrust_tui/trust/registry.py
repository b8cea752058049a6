"""The one registry of trust dimensions, in the paper's column order.

Dimension ids are used everywhere (CLI, store, exports): toxicity, stereotype, privacy,
fairness, ethics, advglue, ood, advdemo, mmlu. Registration is explicit (no import-time
side effects), so adding a dimension is one line here: its id, class, names and verdict polarity,
from which report columns, exports, badges, screen labels and CLI help are all derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from types import MappingProxyType
from typing import Literal, Mapping

from ..errors import CtrustError
from .dimension import Dimension

Polarity = Literal["good", "bad", "neutral"]


@dataclass(frozen=True)
class DimensionMeta:
    """How a dimension is named and shown everywhere (tables, exports, badges, screens, CLI help).

    Kept here, not in the dimension modules, so showing a score never loads a dimension's data
    and every place derives the same words from one table.
    """

    id: str
    target: str  # "module:Class" under trust/dimensions (imported lazily)
    title: str  # long name (Setup checklist, Inspect picker); equals the dimension's info.title
    short: str  # column header, the paper's sheet name; equals info.short
    label: str  # short name plus any caveat a reader must see next to the number
    polarity: Mapping[str, Polarity] = field(default_factory=dict)  # verdict word -> good | bad


DIMENSIONS: tuple[DimensionMeta, ...] = (  # the paper's column order
    DimensionMeta("mmlu", "mmlu:MMLU", "MMLU (benign utility)", "MMLU", "MMLU"),
    DimensionMeta("advdemo", "advdemo:AdvDemonstration", "Robustness to adversarial demonstrations",
                  "AdvDemo", "AdvDemo"),
    DimensionMeta("advglue", "advglue:AdvGLUE", "Adversarial robustness (AdvGLUE dev, substitute for AdvGLUE++)",
                  "AdvGLUE", "AdvGLUE (dev subst.)"),
    DimensionMeta("fairness", "fairness:Fairness", "Fairness", "Fairness", "Fairness"),
    DimensionMeta("ethics", "ethics:MachineEthics", "Machine ethics", "Ethics", "Ethics"),
    DimensionMeta("ood", "ood:OOD", "Out-of-distribution robustness", "OOD", "OOD"),
    DimensionMeta("privacy", "privacy:Privacy", "Privacy", "Privacy", "Privacy",
                  {"leak": "bad", "no_leak": "good"}),
    DimensionMeta("stereotype", "stereotype:Stereotype", "Stereotype bias", "Stereotype", "Stereotype",
                  {"agree": "bad", "disagree": "good"}),
    DimensionMeta("toxicity", "toxicity:Toxicity", "Toxicity", "Toxicity", "Toxicity",
                  {"toxic": "bad", "non_toxic": "good"}),
)
_META: Mapping[str, DimensionMeta] = MappingProxyType({m.id: m for m in DIMENSIONS})
# id -> "module:Class" (lazy so `ctrust --help` does not read any data files)
_DIMENSION_CLASSES: Mapping[str, str] = MappingProxyType({m.id: m.target for m in DIMENSIONS})

DIMENSION_IDS: tuple[str, ...] = tuple(_DIMENSION_CLASSES)
# verdict words with a fixed meaning, whichever dimension emits them (checked unambiguous below)
VERDICT_POLARITY: Mapping[str, Polarity] = MappingProxyType({w: p for m in DIMENSIONS for w, p in m.polarity.items()})


def dimension_meta(dim_id: str) -> DimensionMeta:
    """Display metadata for `dim_id`; an unknown id (an old cache) is shown by its id."""
    return _META.get(dim_id) or DimensionMeta(dim_id, "", dim_id, dim_id, dim_id)


def verdict_polarity(word: str, dimension: str | None = None) -> Polarity:
    """good / bad / neutral for a verdict word (label words such as 'A' or 'wrong' are neutral:
    whether they are right is the verdict's `correct` field, not the word)."""
    if dimension is not None and dimension in _META:
        return _META[dimension].polarity.get(word, "neutral")
    return VERDICT_POLARITY.get(word, "neutral")


def available_ids() -> tuple[str, ...]:
    """Dimension ids whose implementation module exists in this build."""
    out = []
    for did, target in _DIMENSION_CLASSES.items():
        mod = target.split(":")[0]
        try:
            import_module(f"{__package__}.dimensions.{mod}")
        except ModuleNotFoundError:
            continue
        out.append(did)
    return tuple(out)


@cache
def get_dimension(dim_id: str) -> Dimension:
    """The (stateless, shared) dimension object for `dim_id`, or a clear error listing choices."""
    target = _DIMENSION_CLASSES.get(dim_id)
    if target is None:
        raise CtrustError(f"unknown dimension {dim_id!r}; choose from: {', '.join(DIMENSION_IDS)}, all")
    mod_name, cls_name = target.split(":")
    try:
        module = import_module(f"{__package__}.dimensions.{mod_name}")
    except ModuleNotFoundError as exc:
        raise CtrustError(f"dimension {dim_id!r} is not implemented in this build ({exc})") from None
    return getattr(module, cls_name)()


def parse_dimensions(text: str) -> tuple[str, ...]:
    """'all' or a comma list -> validated ids in registry order (duplicates removed)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise CtrustError(f"no dimensions given; choose from: {', '.join(DIMENSION_IDS)}, all")
    if "all" in parts:
        return available_ids()
    for p in parts:
        get_dimension(p)
    return tuple(d for d in DIMENSION_IDS if d in parts)
