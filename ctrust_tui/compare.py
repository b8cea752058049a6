"""Paired comparisons between runs of the same model (store + trust; pure Python).

Every comparison is made under one rule set, and both runs must have current verdicts under it:
a paper-rule score is never set against a robust-rule one, nor against verdicts made by an older
version of the same rules. Each delta is also split into *changed answers* and *format failures*
(trust/format_failures.py), which tells a lost judgement from a lost answer format. With margins,
each dimension gets a non-inferiority verdict (trust/noninferiority.py).
"""

from __future__ import annotations

from typing import Sequence

from .errors import CtrustError
from .store.db import RunRow, Store
from .trust import get_dimension
from .trust.format_failures import FormatSplit, format_split
from .trust.noninferiority import DEFAULT_ALPHA, Margins
from .trust.rules import DEFAULT_RULES, RULE_SETS, RULES_VERSION, parse_rules, rules_tag
from .trust.stats import PairedComparison, paired_compare


def require_rules(store: Store, run: RunRow, rules: str) -> None:
    """Refuse a run without current verdicts under `rules` (one line that says how to fix it)."""
    have = store.verdict_rules(run.id)
    entry = have.get(rules)
    current = RULES_VERSION[rules]
    if entry is None:
        others = ", ".join(sorted(have)) or "none"
        raise CtrustError(
            f"run #{run.id} has no verdicts under the {rules} rules (it has: {others}); "
            f"run `ctrust rescore {run.id} --rules {rules}` first"
        )
    if entry["versions"] != [current]:
        raise CtrustError(
            f"run #{run.id} has verdicts from {rules} rules version(s) {entry['versions']}, not the current "
            f"{rules_tag(rules)}; run `ctrust rescore {run.id} --rules {rules}` to bring them up to date"
        )


def _check_pair(store: Store, run_a: int, run_b: int) -> tuple[RunRow, RunRow]:
    a, b = store.run(run_a), store.run(run_b)
    for rid, r in ((run_a, a), (run_b, b)):
        if r is None:
            raise CtrustError(f"no run #{rid} in {store.path}; see `ctrust runs`")
    assert a is not None and b is not None
    if a.model_name.split("--")[0] != b.model_name.split("--")[0]:
        raise CtrustError(f"runs #{run_a} and #{run_b} evaluate different models ({a.model_name} vs {b.model_name})")
    if a.scorer and b.scorer and a.scorer != b.scorer:
        raise CtrustError(
            f"runs #{run_a} and #{run_b} used different toxicity scorers ({a.scorer} vs {b.scorer}); "
            "their toxicity scores are not comparable"
        )
    return a, b


def shared_dimensions(a: RunRow, b: RunRow, dimensions: Sequence[str] | None = None) -> list[str]:
    """The dimensions both runs evaluated, or the asked-for ones if both runs have them."""
    shared = [d for d in a.dimensions if d in b.dimensions]
    if dimensions is None:
        return shared
    missing = [d for d in dimensions if d not in shared]
    if missing:
        raise CtrustError(f"dimension {', '.join(missing)} is not in both runs #{a.id} and #{b.id} "
                          f"(shared: {', '.join(shared) or 'none'})")
    return list(dimensions)


def compare_runs(store: Store, run_a: int, run_b: int, *, seed: int = 0, rules: str = DEFAULT_RULES,
                 margins: Margins | None = None, alpha: float = DEFAULT_ALPHA,
                 dimensions: Sequence[str] | None = None) -> list[PairedComparison]:
    """B minus A per shared dimension, on the prompts both runs judged, under one rule set; with
    `margins`, each dimension also gets its non-inferiority verdict (`PairedComparison.decision`).
    `seed` is kept for callers: the paired interval is exact, not resampled."""
    rules = parse_rules(rules)
    a, b = _check_pair(store, run_a, run_b)
    for r in (a, b):
        require_rules(store, r, rules)
    dims = shared_dimensions(a, b, dimensions)
    if margins is not None:
        margins.check_dimensions(dims)
    out = []
    for dim_id in dims:
        dim = get_dimension(dim_id)
        out.append(paired_compare(
            dim_id, store.judged(run_a, dim_id, rules), store.judged(run_b, dim_id, rules),
            lambda j, dim=dim: dim.score_only(j, rules), stratum=dim.stratum, linear=dim.score_is_mean,
            margin=None if margins is None else margins.of(dim_id), alpha=alpha,
        ))
    return out


def compare_format(store: Store, run_a: int, run_b: int, *, seed: int = 0, n_boot: int = 500) -> list[FormatSplit]:
    """Per shared dimension: B minus A under paper rules, split into changed answers and format failures
    (`n_boot=0`: point estimates only, for live views)."""
    a, b = _check_pair(store, run_a, run_b)
    for r in (a, b):
        for rules in RULE_SETS:
            require_rules(store, r, rules)
    out = []
    for dim_id in [d for d in a.dimensions if d in b.dimensions]:
        out.append(format_split(
            get_dimension(dim_id),
            {rules: store.judged(run_a, dim_id, rules) for rules in RULE_SETS},
            {rules: store.judged(run_b, dim_id, rules) for rules in RULE_SETS},
            seed=seed, n_boot=n_boot,
        ))
    return out
