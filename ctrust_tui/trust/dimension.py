"""The contract every trust dimension implements (one self-describing object per dimension).

A dimension knows its scenarios, builds its prompts for a profile, judges one record's
outputs, and aggregates judged records into a 0-100 score, under either rule set (`rules.py`):
`judge_paper`/`aggregate_paper` reproduce the fork's scoring code, `judge_robust`/`aggregate_robust`
are ctrust's own parser. The shared parts (rule dispatch, the generic refusal-phrase rate, format
failures, bootstrap interval, result object) live here so every dimension reports them the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from .profiles import Profile
from .refusal import is_refusal
from .rules import DEFAULT_RULES, PAPER, parse_rules
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
    rules: str = DEFAULT_RULES


# verdict words that mean "no answer was read from the output" (dimensions may widen this)
NON_ANSWERS: frozenset[str] = frozenset({"refusal", "invalid", "no_response", "unknown"})


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
    # The score is a weighted mean of per-prompt values (paired score intervals apply); False for
    # scores built from group statistics (fairness DPD/EOD), which get a jackknife interval instead.
    score_is_mean: bool = True

    @property
    def id(self) -> str:
        return self.info.id

    @abstractmethod
    def scenarios(self) -> tuple[Scenario, ...]:
        """All scenarios this dimension can run (paper-scale counts)."""

    @abstractmethod
    def build_prompts(self, profile: Profile) -> list[PromptRecord]:
        """Deterministic prompt records for `profile` (seeded subsets of the vendored data)."""

    def prompts(self, profile: Profile, limit: int | None = None) -> list[PromptRecord]:
        """The profile's prompts, or `limit` of them drawn across strata (`--limit`).

        The first N records of a dimension sit in one or two scenarios (quick toxicity's first 20
        are 2 of its 8 configurations), which left the paper's all-scenario aggregates (AdvDemo,
        OOD, toxicity) without a score. The stratified prefix holds each stratum in proportion
        (within one prompt), so where strata are equal-sized a limit at or above their number
        reaches every one (quick: AdvDemo 18, toxicity 8, OOD 36). The profile's order is kept
        among the chosen records.
        """
        recs = self.build_prompts(profile)
        if not limit or limit >= len(recs):
            return recs
        from .sequential import stratified_order

        first_seen: dict[str, str] = {}  # equal shares go to strata in profile order, not by name
        for r in recs:
            first_seen.setdefault(self.stratum(r), f"{len(first_seen):06d}")
        chosen = {id(r) for r in stratified_order(recs, lambda r: first_seen[self.stratum(r)])[:limit]}
        return [r for r in recs if id(r) in chosen]

    @abstractmethod
    def judge_robust(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        """ctrust's tolerant verdict for one record given its n outputs."""

    def judge_paper(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        """The fork's verdict for one record: exactly what its scoring functions return, quirks included.

        `refusal` is the paper's own refusal notion for this dimension ("refusal rates as the paper
        defines them"); `correct`/`leak` as the fork counts them.
        """
        raise NotImplementedError(f"{self.id}: paper rules not implemented yet")

    @abstractmethod
    def aggregate_robust(self, judged: Sequence[Judged]) -> tuple[float | None, dict[str, dict[str, Any]]]:
        """(score 0-100 or None if nothing to score, per-scenario metrics) under ctrust's rules."""

    def aggregate_paper(self, judged: Sequence[Judged]) -> tuple[float | None, dict[str, dict[str, Any]]]:
        """The fork's aggregate; dimensions whose aggregation differs from robust's override this."""
        return self.aggregate_robust(judged)

    def judge(self, record: PromptRecord, outputs: Sequence[str], ctx: JudgeContext) -> Verdict:
        """Verdict under `ctx.rules`, with the generic refusal-phrase share of the outputs added.

        The phrase share (`refusal_phrase`, 0..1) is the same under both rule sets; it is reported
        beside each dimension's own refusal notion, never instead of it.
        """
        rules = parse_rules(ctx.rules)
        verdict = (self.judge_paper if rules == PAPER else self.judge_robust)(record, outputs, ctx)
        phrase = sum(1 for o in outputs if is_refusal(o)) / len(outputs) if outputs else 0.0
        return Verdict(verdict.verdict, verdict.refusal, verdict.correct, verdict.leak,
                       {**verdict.extra, "refusal_phrase": phrase})

    def aggregate(self, judged: Sequence[Judged],
                  rules: str = DEFAULT_RULES) -> tuple[float | None, dict[str, dict[str, Any]]]:
        """(score 0-100 or None, per-scenario metrics) under `rules`."""
        return (self.aggregate_paper if parse_rules(rules) == PAPER else self.aggregate_robust)(judged)

    def answered(self, verdict: Verdict) -> bool:
        """Whether an answer was read from the output (not a refusal, invalid or no-response)."""
        return verdict.verdict not in NON_ANSWERS

    def format_failure(self, paper: Verdict, robust: Verdict) -> bool:
        """Paper rules found no answer where the robust parser reads one: format lost, not judgement."""
        return not self.answered(paper) and self.answered(robust)

    def format_failure_fraction(self, paper: Verdict, robust: Verdict) -> float:
        """Share of this record's samples that are format failures (multi-sample dimensions override)."""
        return 1.0 if self.format_failure(paper, robust) else 0.0

    def repair(self, paper: Verdict, robust: Verdict) -> Verdict:
        """A format failure read the robust way, in a form `aggregate_paper` accepts.

        The robust verdict's label, flags and fields win over the paper verdict's; dimensions whose
        paper aggregate reads fields the robust judge does not write override this.
        """
        return Verdict(robust.verdict, robust.refusal, robust.correct, robust.leak, {**paper.extra, **robust.extra})

    def paper_refusal_rate(self, judged: Sequence[Judged], scenarios: Mapping[str, Mapping[str, Any]]
                           ) -> float | None:
        """The fork's own refusal rate for this dimension under paper rules: by default the per-record
        mean of `refusal_share`; dimensions whose fork averages per-scenario rates override it (None
        where the fork reports none, e.g. a scenario missing). `scenarios`: the paper aggregate's metrics."""
        return sum(self.refusal_share(v) for _, v in judged) / len(judged) if judged else None

    def refusal_share(self, verdict: Verdict) -> float:
        """This verdict's share of refusing samples (multi-sample dimensions set `refusal_fraction`)."""
        return float(verdict.extra.get("refusal_fraction", 1.0 if verdict.refusal else 0.0))

    @property
    def needs_toxicity_scorer(self) -> bool:
        return False

    def stratum(self, record: PromptRecord) -> str:
        """Bootstrap stratum of a record: its scenario, unless a score needs finer strata."""
        return record.scenario

    def score_only(self, judged: Sequence[Judged], rules: str = DEFAULT_RULES) -> float | None:
        return self.aggregate(judged, rules)[0]

    def result(
        self,
        judged: Sequence[Judged],
        *,
        with_ci: bool = True,
        n_boot: int = 500,
        seed: int = 0,
        scorer: str | None = None,
        rules: str = DEFAULT_RULES,
    ) -> DimensionResult:
        """Score + interval + refusal rates under `rules`; `with_ci=False` for cheap running updates."""
        rules = parse_rules(rules)
        score, scenarios = self.aggregate(judged, rules)
        refusal = sum(self.refusal_share(v) for _, v in judged) / len(judged) if judged else None
        if rules == PAPER and judged:
            refusal = self.paper_refusal_rate(judged, scenarios)
        phrase = (sum(float(v.extra.get("refusal_phrase", 0.0)) for _, v in judged) / len(judged)
                  if judged else None)
        ci = (bootstrap_ci(judged, lambda j: self.score_only(j, rules), n_boot=n_boot, seed=seed,
                           stratum=self.stratum)
              if with_ci and judged else None)
        return DimensionResult(
            dimension=self.id,
            score=score,
            ci95=ci,
            refusal_rate=refusal,
            n=len(judged),
            scenarios=scenarios,
            scorer=scorer,
            rules=rules,
            refusal_phrase_rate=phrase,
        )


class PaperSummary:
    """For dimensions whose fork computes score, metrics and refusal rate in one pass (AdvDemo,
    AdvGLUE, OOD): `_paper_summary` returns (score, metrics, refusal rate) and both paper hooks read it."""

    def _paper_summary(self, judged: Sequence[Judged]
                       ) -> tuple[float | None, dict[str, dict[str, Any]], float | None]:
        raise NotImplementedError

    def paper_refusal_rate(self, judged: Sequence[Judged], scenarios: Mapping[str, Any]) -> float | None:
        return self._paper_summary(judged)[2]

    def aggregate_paper(self, judged: Sequence[Judged]) -> tuple[float | None, dict[str, dict[str, Any]]]:
        score, metrics, _ = self._paper_summary(judged)
        return score, metrics
