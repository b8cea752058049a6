"""Adaptive evaluation of compressed variants against a finished dense base run.

Each variant is evaluated in rounds (`trust/sequential.py`): round k generates the stratified
prefix of every still-open dimension up to the k-th look (earlier prompts come from the cache),
then each open dimension is tested against the base on the prompts both have; a dimension whose
non-inferiority verdict is decided (or hopeless: futility) stops and keeps its prefix. One variant
is one growing run in the store (`RunConfig.fractions`). Needs the runner, so not pure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Callable

from .compare import require_rules
from .compress.spec import CompressionSpec
from .runner import EventFn, RunConfig, Runner
from .store import open_store
from .trust import get_dimension
from .trust.noninferiority import Margins
from .trust.paired import paired_model
from .trust.sequential import Outcome, SequentialDesign, outcome_at
from .trust.stats import PairedComparison, paired_compare


@dataclass(frozen=True)
class AdaptiveVariant:
    run_id: int
    spec: str
    outcomes: dict[str, Outcome]
    comparisons: tuple[PairedComparison, ...]  # each carrying its sequential decision

    @property
    def prompts_used(self) -> int:
        return sum(o.n_used for o in self.outcomes.values())

    @property
    def prompts_total(self) -> int:
        return sum(o.n_total for o in self.outcomes.values())


def _pairs(store: Any, base: int, variant: int, dim: str, rules: str) -> list:
    by_a = {rec.id: (rec, v) for rec, v in store.judged(base, dim, rules)}
    return [(by_a[rec.id], (rec, v)) for rec, v in store.judged(variant, dim, rules) if rec.id in by_a]


def evaluate_variant(cfg: RunConfig, spec: CompressionSpec, base_run: int, *, margins: Margins,
                     design: SequentialDesign, emit: EventFn, cancel: threading.Event | None = None,
                     runner_factory: Callable[..., Runner] | None = None) -> AdaptiveVariant:
    """Rounds of generation and sequential tests for one variant (see the module docstring)."""
    rules = cfg.rules
    totals = {d: _dimension_total(cfg, d) for d in cfg.dimensions}
    fractions = {d: design.looks[0] for d in cfg.dimensions}
    open_dims = list(cfg.dimensions)
    outcomes: dict[str, Outcome] = {}
    comparisons: dict[str, PairedComparison] = {}
    run_id = -1
    for k, t in enumerate(design.looks):
        fractions.update({d: t for d in open_dims})
        round_cfg = replace(cfg, compressions=(spec,), fractions=tuple(sorted(fractions.items())))
        (run_id,) = (runner_factory or Runner)(round_cfg, emit, cancel=cancel).execute()
        with open_store(cfg.db_path, readonly=True) as store:
            run = store.run(run_id)
            assert run is not None
            require_rules(store, run, rules)
            still_open = []
            for d in open_dims:
                dim = get_dimension(d)
                pairs = _pairs(store, base_run, run_id, d, rules)

                def score(j, dim=dim):
                    return dim.score_only(j, rules)

                model, why = paired_model(pairs, score, dim.stratum, linear=dim.score_is_mean)
                out = outcome_at(design, k, model, why, len(pairs), totals[d], margins.of(d))
                if out is None:
                    still_open.append(d)
                    continue
                outcomes[d] = out
                comp = paired_compare(d, [a for a, _ in pairs], [b for _, b in pairs], score, stratum=dim.stratum,
                                      linear=dim.score_is_mean)
                comparisons[d] = replace(comp, decision=out.decision(d, margins.of(d), design))
            open_dims = still_open
        if not open_dims:
            break
    return AdaptiveVariant(run_id, str(spec), outcomes,
                           tuple(comparisons[d] for d in cfg.dimensions if d in comparisons))


def evaluate_against_base(cfg: RunConfig, specs: list[CompressionSpec], *, margins: Margins,
                          design: SequentialDesign, emit: EventFn, cancel: threading.Event | None = None
                          ) -> tuple[int, list[AdaptiveVariant]]:
    """The dense base run in full (or from the cache), then every spec adaptively against it:
    what `ctrust run --adaptive` and `ctrust recommend --adaptive` share."""
    (base_id,) = Runner(replace(cfg, compressions=(CompressionSpec(),)), emit, cancel=cancel).execute()
    return base_id, [evaluate_variant(cfg, spec, base_id, margins=margins, design=design, emit=emit, cancel=cancel)
                     for spec in specs]


def describe_variant(v: AdaptiveVariant, design: SequentialDesign) -> str:
    """One plain line per variant: where each dimension stopped and what it decided."""
    parts = [f"{d} {o.verdict} at {o.n_used}/{o.n_total} (look {o.look + 1}/{len(design.looks)})"
             for d, o in v.outcomes.items()]
    saved = 1 - v.prompts_used / max(1, v.prompts_total)
    return f"{v.spec} (run #{v.run_id}): {'; '.join(parts)}; {v.prompts_used} of {v.prompts_total} prompts ({saved:.0%} saved)"


def _dimension_total(cfg: RunConfig, dim_id: str) -> int:
    from .trust import get_profile

    return len(get_dimension(dim_id).prompts(get_profile(cfg.profile), cfg.limit))


__all__ = ["AdaptiveVariant", "describe_variant", "evaluate_against_base", "evaluate_variant"]
