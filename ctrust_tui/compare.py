"""Paired comparisons between runs of the same model (store + trust; pure Python)."""

from __future__ import annotations

from .errors import CtrustError
from .store.db import Store
from .trust import get_dimension
from .trust.stats import PairedComparison, paired_compare


def compare_runs(store: Store, run_a: int, run_b: int, *, seed: int = 0) -> list[PairedComparison]:
    """B minus A per shared dimension, on the prompts both runs judged."""
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
    out = []
    for dim_id in [d for d in a.dimensions if d in b.dimensions]:
        dim = get_dimension(dim_id)
        out.append(paired_compare(dim_id, store.judged(run_a, dim_id), store.judged(run_b, dim_id),
                                  dim.score_only, seed=seed, stratum=dim.stratum))
    return out
