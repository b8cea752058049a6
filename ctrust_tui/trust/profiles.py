"""Evaluation profiles: how many prompts per scenario and samples per prompt.

`smoke` is for tests and the demo (whole suite in a few CPU minutes), `quick` is a real but
cheap signal (~50-100 prompts per dimension), `paper` is DecodingTrust scale (GPU, hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..errors import CtrustError


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    per_scenario: int | None  # cap per scenario; None = the paper's count
    dimension_budget: int | None  # spread this many prompts over a dimension's scenarios
    samples: int | None  # samples per prompt for sampled dimensions; None = the paper's n

    def count(self, n_scenarios: int, paper_count: int) -> int:
        """How many prompts one scenario gets under this profile (never more than the paper)."""
        if self.per_scenario is None and self.dimension_budget is None:
            return paper_count
        k = paper_count
        if self.per_scenario is not None:
            k = min(k, self.per_scenario)
        if self.dimension_budget is not None:
            k = min(k, max(2, -(-self.dimension_budget // max(1, n_scenarios))))
        return max(1, k)

    def n_samples(self, paper_n: int) -> int:
        return paper_n if self.samples is None else min(paper_n, self.samples)


PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        "smoke": Profile("smoke", "a few prompts per scenario; tests and demos, minutes on CPU", 2, None, 1),
        "quick": Profile("quick", "~50-100 prompts per dimension; a cheap real signal", None, 80, 3),
        "paper": Profile("paper", "DecodingTrust scale (the paper's scenario set); GPU, hours", None, None, None),
    }
)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise CtrustError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
