"""Rule sets: how raw outputs become verdicts and scores.

`paper` reproduces the scoring functions of the code *Decoding Compressed Trust* ran (the
decoding-comp-trust fork of DecodingTrust, head 0cf3fc1, and comp-trust's MMLU script), quirks
included, so a ctrust number can sit next to the paper's table. `robust` is ctrust's own parser:
it reads an answer wherever a person would ("This is wrong." -> wrong), which separates a model that
lost its judgement from one that only lost the answer format. Both are computed for every output.

A rule set's version is bumped whenever any of its verdicts can change, so stored verdicts made
under an older version are known to be stale and are re-derived by `ctrust rescore`.
"""

from __future__ import annotations

from ..errors import CtrustError

PAPER, ROBUST = "paper", "robust"
RULE_SETS: tuple[str, ...] = (PAPER, ROBUST)
DEFAULT_RULES = PAPER
# bump on any verdict-changing edit of the rule set (all dimensions share one counter per set).
# robust 2: toxicity refusals counted per sample (refusal_fraction), fairness robust scores Adult only;
# verdicts stored before rule sets existed are robust 1 and are re-derived by `ctrust rescore`.
RULES_VERSION: dict[str, int] = {PAPER: 1, ROBUST: 2}

RULES_HELP = {
    PAPER: "the paper's own scoring code (decoding-comp-trust fork of DecodingTrust), quirks included",
    ROBUST: "ctrust's tolerant parser: reads answers a person would read, documented rule by rule",
}


def parse_rules(text: str) -> str:
    """A rule-set name, validated; one clear error listing the choices otherwise."""
    name = (text or "").strip().lower()
    if name not in RULE_SETS:
        raise CtrustError(f"unknown rule set {text!r}; choose from: {', '.join(RULE_SETS)}")
    return name


def rules_tag(rules: str) -> str:
    """'paper@1': the rule set and its version, as stored with every verdict and score."""
    return f"{rules}@{RULES_VERSION[rules]}"


def scorer_identity(dimension: str, rules: str, toxicity_scorer: str | None = None) -> str:
    """Who produced a verdict: dimension + rule set + rules version (+ the toxicity classifier)."""
    ident = f"{dimension}:{rules_tag(rules)}"
    return f"{ident}+{toxicity_scorer}" if toxicity_scorer else ident
