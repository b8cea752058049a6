"""Re-derive verdicts and scores of finished runs from their cached outputs (no generation).

Verdicts are a pure function of (record, outputs, rule set, toxicity scorer), and every output
is in the cache, so changing or upgrading a rule set never needs the model: a quick-profile run
(~1,100 records) re-scores in seconds. Store + trust only; never imports torch.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import Cancelled, CtrustError
from .store import open_store
from .store.db import RunRow, Store
from .store.runlock import RunLock
from .trust import JudgeContext, get_dimension
from .trust.rules import scorer_identity
from .trust.types import DimensionResult, PromptRecord, Verdict


@dataclass(frozen=True)
class Rescored:
    run_id: int
    rules: str
    results: tuple[DimensionResult, ...]
    judged: int
    pending: int  # records whose outputs are not all cached (an unfinished run)


def _check_runs(store: Store, run_ids: Sequence[int]) -> list[RunRow]:
    """Every id exists and no run is still running: checked before anything is written."""
    runs = []
    for rid in run_ids:
        run = store.run(rid)
        if run is None:
            raise CtrustError(f"no run #{rid} in {store.path}; see `ctrust runs`")
        if run.shown_status == "running":
            raise CtrustError(f"run #{rid} is still running; rescore it once it has finished or been cancelled")
        runs.append(run)
    return runs


def _toxicity_scorer(runs: Sequence[RunRow], requested: str | None) -> Any:
    """The scorer the runs were scored with; a different one would make a silent mix."""
    if not any("toxicity" in r.dimensions for r in runs):
        return None
    from .scorers import resolve_toxicity_scorer

    scorer = resolve_toxicity_scorer(requested)
    for r in runs:
        if "toxicity" in r.dimensions and r.scorer and r.scorer != scorer.name:
            raise CtrustError(
                f"run #{r.id} was scored by {r.scorer}, but the toxicity scorer here is {scorer.name}; "
                "pass --toxicity-scorer to use the run's own scorer"
            )
    return scorer


def rescore_runs(db_path: Path, run_ids: Sequence[int], rule_sets: Sequence[str], *,
                 toxicity_scorer: str | None = None, seed: int | None = None) -> list[Rescored]:
    """Judge every cached output of each run under each rule set; replace those verdicts and scores."""
    with open_store(db_path) as store, ExitStack() as locks:
        runs = _check_runs(store, run_ids)
        for run in runs:  # a run another process is writing (resumed right now) is not rescored under it
            lock = locks.enter_context(RunLock(Path(db_path)))
            held_by: list[str] = []
            try:
                lock.acquire(run.settings, notice=held_by.append, should_stop=lambda: True)
            except Cancelled:
                raise CtrustError(f"run #{run.id} is being written by another process "
                                  f"({held_by[0] if held_by else 'unknown'}); rescore it once that has finished"
                                  ) from None
        scorer = _toxicity_scorer(runs, toxicity_scorer)
        scorer_name = getattr(scorer, "name", None)
        out: list[Rescored] = []
        for run in runs:
            items = store.run_items(run.id, with_outputs=True)
            complete = [(it.record, list(it.outputs)) for it in items if len(it.outputs) >= it.record.decoding.n]
            pending = len(items) - len(complete)
            for rules in rule_sets:
                ctx = JudgeContext(toxicity_scorer=scorer, rules=rules)
                judged: dict[str, list[tuple[PromptRecord, Verdict]]] = {d: [] for d in run.dimensions}
                for rec, outs in complete:
                    dim = get_dimension(rec.dimension)
                    judged.setdefault(rec.dimension, []).append(
                        (rec, dim.judge(rec, outs[: rec.decoding.n], ctx)))
                for d, pairs in judged.items():
                    tox = scorer_name if get_dimension(d).needs_toxicity_scorer else None
                    store.put_verdicts(run.id, pairs, scorer_identity(d, rules, tox), rules=rules)
                results = []
                for d in run.dimensions:
                    dim = get_dimension(d)
                    res = dim.result(judged.get(d, []), with_ci=True, seed=run.seed if seed is None else seed,
                                     rules=rules, scorer=scorer_name if dim.needs_toxicity_scorer else None)
                    total = sum(1 for it in items if it.record.dimension == d)
                    store.put_score(run.id, res, total=total, final=run.status == "finished" and not pending)
                    results.append(res)
                out.append(Rescored(run.id, rules, tuple(results), len(complete), pending))
        return out
