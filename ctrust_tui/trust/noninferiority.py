"""Non-inferiority verdicts: is the variant's score no more than `margin` points below the base's?

With the paired (1 − alpha) interval [lo, hi] of variant − base:
  non-inferior  lo > −margin   (at most alpha/2 false "non-inferior" when the truth is −margin)
  inferior      hi < −margin
  inconclusive  otherwise, with the number of further prompts that would likely settle it
and "too few prompts" where no valid interval exists (see `paired.py`). The verdict is read from
the test statistic at the margin, so it always agrees with the interval shown beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ..errors import CtrustError
from .paired import PairedModel, normal_quantile

NON_INFERIOR, INFERIOR, INCONCLUSIVE, TOO_FEW = "non-inferior", "inferior", "inconclusive", "too few prompts"
VERDICTS: tuple[str, ...] = (NON_INFERIOR, INFERIOR, INCONCLUSIVE, TOO_FEW)
DEFAULT_MARGIN = 2.0  # score points; the paper calls changes of a few points on a 0-100 scale negligible
DEFAULT_ALPHA = 0.05  # two-sided level of the interval; a false "non-inferior" is at most alpha/2
POWER = 0.8  # "prompts to settle" are sized for this chance of a decided verdict
MAX_GROWTH = 100.0  # beyond 100x the current prompts the estimate is not worth stating


@dataclass(frozen=True)
class Margins:
    """Non-inferiority margin in score points, per dimension with a default."""

    default: float = DEFAULT_MARGIN
    per_dimension: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def of(self, dimension: str) -> float:
        return float(self.per_dimension.get(dimension, self.default))

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default, **dict(self.per_dimension)}

    def check_dimensions(self, present: Sequence[str]) -> None:
        """A per-dimension margin for a dimension that is not compared is a typo: say so."""
        missing = sorted(set(self.per_dimension) - set(present))
        if missing:
            raise CtrustError(
                f"--margin names {', '.join(missing)}, not among the compared dimensions "
                f"({', '.join(present) or 'none'})"
            )


def _points(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CtrustError(f"--margin {what}: {text!r} is not a number (score points, e.g. 2)") from None
    if not math.isfinite(value) or value < 0:
        raise CtrustError(f"--margin {what}: {text!r} must be a non-negative number of score points")
    if value > 100:
        raise CtrustError(f"--margin {what}: {text!r} exceeds the 0-100 score scale")
    return value


def parse_margins(text: str | None, *, known: Sequence[str] | None = None) -> Margins:
    """'2' or 'toxicity=1,default=2' (score points). `known`: dimension ids accepted as keys."""
    if text is None or not str(text).strip():
        return Margins()
    text = str(text).strip()
    if "=" not in text:
        return Margins(_points(text, "default"))
    default = DEFAULT_MARGIN
    per: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key:
            raise CtrustError(f"--margin: {part!r} is not NAME=POINTS (e.g. toxicity=1,default=2)")
        key = key.lower()
        if key == "default":
            default = _points(value, "default")
            continue
        if known is not None and key not in known:
            raise CtrustError(f"--margin: unknown dimension {key!r}; choose from: {', '.join(known)}, default")
        per[key] = _points(value, key)
    return Margins(default, MappingProxyType(per))


def parse_alpha(value: float) -> float:
    if not (0.0 < value < 0.5):
        raise CtrustError(f"--alpha {value}: choose a level between 0 and 0.5 (e.g. 0.05 for 95% intervals)")
    return value


@dataclass(frozen=True)
class NonInferiority:
    dimension: str
    margin: float
    alpha: float
    verdict: str
    ci: tuple[float, float] | None
    z_at_margin: float | None
    n: int
    further_prompts: int | None  # inconclusive only: more prompts likely to settle it (None: not estimable)
    method: str | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "verdict": self.verdict,
            "margin": self.margin,
            "alpha": self.alpha,
            "ci": list(self.ci) if self.ci else None,
            "z_at_margin": None if self.z_at_margin is None or not math.isfinite(self.z_at_margin)
            else self.z_at_margin,
            "n": self.n,
            "further_prompts": self.further_prompts,
            "method": self.method,
            "reason": self.reason,
        }

    @property
    def short(self) -> str:
        """The verdict as one table cell: 'non-inferior', 'inconclusive (+120)', ..."""
        if self.verdict == INCONCLUSIVE:
            return f"{INCONCLUSIVE} ({self.settle})"
        return self.verdict

    @property
    def settle(self) -> str:
        """'+120' further prompts, or '>100x' when settling is out of reach."""
        if self.further_prompts is not None:
            return f"+{self.further_prompts}"
        return f">{MAX_GROWTH:g}x" if self.method else ""


def critical(model: PairedModel, alpha: float) -> float:
    crit = getattr(model, "crit", None)
    return crit(alpha) if crit else normal_quantile(1.0 - alpha / 2.0)


def verdict_at(model: PairedModel, margin: float, crit: float) -> tuple[str, float]:
    z = model.z(-margin)
    if z > crit:
        return NON_INFERIOR, z
    if z < -crit:
        return INFERIOR, z
    return INCONCLUSIVE, z


def further_prompts(n: int, z: float, crit: float, power: float = POWER) -> int | None:
    """Extra prompts at which the margin test would likely (power) be decided, if the observed
    difference and spread held: the statistic grows like sqrt(n), so n_total = n ((crit+z_pow)/|z|)^2."""
    if n <= 0 or not math.isfinite(z) or abs(z) < 1e-9:
        return None
    growth = ((crit + normal_quantile(power)) / abs(z)) ** 2
    if growth > MAX_GROWTH:
        return None
    return max(1, math.ceil(n * (growth - 1.0)))


def decide(dimension: str, model: PairedModel | None, *, margin: float, alpha: float = DEFAULT_ALPHA,
           n: int, reason: str = "") -> NonInferiority:
    """The non-inferiority verdict of one dimension from its paired interval model."""
    if model is None:
        return NonInferiority(dimension, margin, alpha, TOO_FEW, None, None, n, None, None,
                              reason or "too few prompts")
    crit = critical(model, alpha)
    verdict, z = verdict_at(model, margin, crit)
    more = further_prompts(n, z, crit) if verdict == INCONCLUSIVE else None
    note = ""
    if verdict == INCONCLUSIVE and more is None:
        note = ("the difference sits on the margin: more prompts are unlikely to settle it" if abs(z) < 1e-9
                else f"settling it would take more than {MAX_GROWTH:g}x the {n} prompts")
    return NonInferiority(dimension, margin, alpha, verdict, model.interval(alpha), z, n, more, model.method, note)
