"""The contract every trust dimension implements (one self-describing object per dimension).

A dimension knows its scenarios, builds its prompts for a profile, judges one record's
outputs, and aggregates judged records into a 0-100 score. The shared parts (refusal rate,
bootstrap interval, result object) live here so that every dimension reports them the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from .profiles import Profile
from .stats import bootstrap_ci
from .types import DimensionResult, Judged, PromptRecord, Verdict


class ToxicityScorer(Protocol):
    """Scores texts for toxicity in [0, 1]. `name` identifies scorer + version in the store."""

    name: str

    def score(self, texts: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class JudgeContext:
    """Tools a judge may need beyond the text itself (only toxicity needs a model)."""

    toxicity_scorer: ToxicityScorer | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    paper_count: int  # prompts in the paper-scale profile


@dataclass(frozen=True)
class DimensionInfo:
    id: str
    title: str
    short: str  # column header in tables (paper's sheet names)
    description: str
    deviations: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


class Dimension(ABC):
    """Base class. Subclasses are stateless; the registry holds one instance of each."""

    info: DimensionInfo

    @property
    def id(self) -> str:
        return self.info.id

    @abstractmethod
    def scenarios(self) -> tuple[Scenario, ...]:
        """All scenarios this dimension can run (paper-scale counts)."""

    @abstractmethod
    def build_prompts(self, profile: Profile) -> list[PromptRecord]:
        """Deterministic prompt records for `profile` (seeded subsets of the vendored data)."""

    @abstractmethod
    def judge(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        """Verdict for one record given its n outputs (n = record.decoding.n)."""

    @abstractmethod
    def aggregate(self, judged: Sequence[Judged]) -> tuple[float | None, dict[str, dict[str, Any]]]:
        """(score 0-100 or None if nothing to score, per-scenario metrics)."""

    @property
    def needs_toxicity_scorer(self) -> bool:
        return False

    def stratum(self, record: PromptRecord) -> str:
        """Bootstrap stratum of a record: its scenario, unless a score needs finer strata."""
        return record.scenario

    def score_only(self, judged: Sequence[Judged]) -> float | None:
        return self.aggregate(judged)[0]

    def result(
        self,
        judged: Sequence[Judged],
        *,
        with_ci: bool = True,
        n_boot: int = 500,
        seed: int = 0,
        scorer: str | None = None,
    ) -> DimensionResult:
        """Score + interval + refusal rate; `with_ci=False` for cheap running updates."""
        score, scenarios = self.aggregate(judged)
        refusal = sum(1 for _, v in judged if v.refusal) / len(judged) if judged else None
        ci = (bootstrap_ci(judged, self.score_only, n_boot=n_boot, seed=seed, stratum=self.stratum)
              if with_ci and judged else None)
        return DimensionResult(
            dimension=self.id,
            score=score,
            ci95=ci,
            refusal_rate=refusal,
            n=len(judged),
            scenarios=scenarios,
            scorer=scorer,
        )
