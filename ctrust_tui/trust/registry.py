"""The one registry of trust dimensions, in the paper's column order.

Dimension ids are used everywhere (CLI, store, exports): toxicity, stereotype, privacy,
fairness, ethics, advglue, ood, advdemo, mmlu. Registration is explicit (no import-time
side effects), so adding a dimension is one line here.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from types import MappingProxyType
from typing import Mapping

from ..errors import CtrustError
from .dimension import Dimension

# id -> "module:Class" (lazy so `ctrust --help` does not read any data files)
_DIMENSION_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "mmlu": "mmlu:MMLU",
        "advdemo": "advdemo:AdvDemonstration",
        "advglue": "advglue:AdvGLUE",
        "fairness": "fairness:Fairness",
        "ethics": "ethics:MachineEthics",
        "ood": "ood:OOD",
        "privacy": "privacy:Privacy",
        "stereotype": "stereotype:Stereotype",
        "toxicity": "toxicity:Toxicity",
    }
)

DIMENSION_IDS: tuple[str, ...] = tuple(_DIMENSION_CLASSES)


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
