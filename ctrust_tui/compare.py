"""Paired comparisons between runs of the same model (store + trust; pure Python)."""

from __future__ import annotations

import inspect
from typing import Sequence

from .errors import CtrustError
from .store.db import RunRow, Store
from .trust import get_dimension
from .trust.noninferiority import DEFAULT_ALPHA, Margins
from .trust.rules import DEFAULT_RULES, parse_rules
from .trust.stats import PairedComparison, paired_compare
from .trust.types import Judged


def _judged(store: Store, run_id: int, dim_id: str, rules: str) -> list[Judged]:
    """The run's verdicts under `rules` (stores without per-rule-set verdicts hold one set)."""
    if "rules" in inspect.signature(store.judged).parameters:
        return store.judged(run_id, dim_id, rules=rules)  # type: ignore[call-arg]
    return store.judged(run_id, dim_id)


def run_rules(run: RunRow) -> str | None:
    """The rule set a run was scored under, where its settings record one."""
    rules = run.settings.get("rules") if isinstance(run.settings, dict) else None
    return str(rules) if rules else None


def comparable_runs(store: Store, run_a: int, run_b: int) -> tuple[RunRow, RunRow]:
    """Both runs, or one clear error: missing run, different models, scorers or rule sets."""
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
    ra, rb = run_rules(a), run_rules(b)
    if ra and rb and ra != rb:
        raise CtrustError(f"runs #{run_a} and #{run_b} were scored under different rule sets ({ra} vs {rb}); "
                          "rescore one of them or compare under one --rules")
    return a, b


def shared_dimensions(a: RunRow, b: RunRow, dimensions: Sequence[str] | None = None) -> list[str]:
    shared = [d for d in a.dimensions if d in b.dimensions]
    if dimensions is None:
        return shared
    missing = [d for d in dimensions if d not in shared]
    if missing:
        raise CtrustError(f"dimension {', '.join(missing)} is not in both runs #{a.id} and #{b.id} "
                          f"(shared: {', '.join(shared) or 'none'})")
    return list(dimensions)


def compare_runs(store: Store, run_a: int, run_b: int, *, margins: Margins | None = None,
                 alpha: float = DEFAULT_ALPHA, rules: str = DEFAULT_RULES,
                 dimensions: Sequence[str] | None = None) -> list[PairedComparison]:
    """B minus A per shared dimension, on the prompts both runs judged; with `margins`, each
    dimension also gets its non-inferiority verdict (`PairedComparison.decision`)."""
    rules = parse_rules(rules)
    a, b = comparable_runs(store, run_a, run_b)
    dims = shared_dimensions(a, b, dimensions)
    if margins is not None:
        margins.check_dimensions(dims)
    out = []
    for dim_id in dims:
        dim = get_dimension(dim_id)
        out.append(paired_compare(
            dim_id, _judged(store, run_a, dim_id, rules), _judged(store, run_b, dim_id, rules),
            lambda j, dim=dim: dim.score_only(j, rules), stratum=dim.stratum, linear=dim.score_is_mean,
            margin=None if margins is None else margins.of(dim_id), alpha=alpha,
        ))
    return out
