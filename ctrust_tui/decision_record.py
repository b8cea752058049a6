"""Auditable decision records for `ctrust export --format json`.

A record says, for one compressed run against its dense base, what was decided and under which
terms: each dimension's non-inferiority verdict with its delta, interval and prompt count, the
margin, alpha, rule set (with version) and scorer identity, and the sha256 of every weight file of
both models, so a decision can be re-checked offline: same weights (sha256), same verdicts in the
cache, same margin -> same verdict. Pure Python (hashlib over the files; no torch).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .compare import compare_runs
from .compress.fingerprint import weight_files
from .compress.integrity import full_digest
from .recommend import spec_of
from .store.db import RunRow, Store
from .trust import get_dimension
from .trust.noninferiority import Margins
from .trust.rules import rules_tag, scorer_identity


def weights_record(path: str | None) -> dict[str, Any]:
    """sha256 of each weight file under `path`, and one digest over the (name, sha256) list.

    With one weight file (the usual model.safetensors) `sha256` is that file's own sha256, which
    `sha256sum` reproduces; with several it is the sha256 of the sorted "sha256  name" lines.
    """
    if not path:
        return {"path": None, "sha256": None, "files": {}, "note": "the run does not record its weights' folder"}
    folder = Path(path)
    if not folder.exists():
        return {"path": path, "sha256": None, "files": {}, "note": "weights not found on this machine"}
    base = folder if folder.is_dir() else folder.parent
    files = {f.relative_to(base).as_posix(): full_digest(f) for f in weight_files(folder)}
    if not files:
        return {"path": path, "sha256": None, "files": {}, "note": "no weight files in the folder"}
    if len(files) == 1:
        digest = next(iter(files.values()))
    else:
        digest = hashlib.sha256("".join(f"{h}  {n}\n" for n, h in sorted(files.items())).encode()).hexdigest()
    return {"path": path, "sha256": digest, "files": files}


def _weights_path(store: Store, run: RunRow) -> str | None:
    compressed = run.env.get("compressed_path") if isinstance(run.env, dict) else None
    if compressed:
        return str(compressed)
    fp = run.settings.get("model_fingerprint") if isinstance(run.settings, dict) else None
    return store.model_path(fp) if fp else None


def _is_dense(run: RunRow) -> bool:
    try:
        return spec_of(run.compression).is_dense
    except Exception:  # a label this ctrust cannot parse is not a base
        return False


def base_for(store: Store, variant: RunRow, among: Sequence[RunRow]) -> RunRow | None:
    """The dense run of the same model, profile and seed: from `among` first, else the latest in the store."""
    def same(r: RunRow) -> bool:
        return (r.id != variant.id and _is_dense(r) and r.profile == variant.profile and r.seed == variant.seed
                and r.model_name.split("--")[0] == variant.model_name.split("--")[0])

    for r in among:
        if same(r):
            return r
    for r in store.runs():  # newest first
        if same(r) and r.status == "finished":
            return r
    return None


def decision_record(store: Store, base: RunRow, variant: RunRow, *, margins: Margins, alpha: float,
                    rules: str) -> dict[str, Any]:
    comps = compare_runs(store, base.id, variant.id, rules=rules, margins=margins, alpha=alpha)
    dims = {}
    for c in comps:
        d = c.decision
        dims[c.dimension] = {
            "verdict": d.verdict if d else None,
            "margin": d.margin if d else None,
            "delta": c.delta,
            "ci": list(d.ci) if d and d.ci else None,
            "n": c.n_shared,
            "further_prompts": d.further_prompts if d else None,
            "method": c.method,
            "reason": d.reason if d else c.note,
            "scorer": scorer_identity(c.dimension, rules,
                                      variant.scorer if get_dimension(c.dimension).needs_toxicity_scorer else None),
        }
    return {
        "base_run": base.id,
        "variant_run": variant.id,
        "compression": variant.compression,
        "margin": margins.to_dict(),
        "alpha": alpha,
        "rules": rules_tag(rules),
        "toxicity_scorer": variant.scorer,
        "dimensions": dims,
        "variant_weights": weights_record(_weights_path(store, variant)),
        "base_weights": weights_record(_weights_path(store, base)),
        "variant_fingerprint": variant.settings.get("model_fingerprint") if isinstance(variant.settings, dict)
        else None,
        "ctrust": __version__,
    }


def decision_records(store: Store, runs: Sequence[RunRow], *, margins: Margins, alpha: float,
                     rules: str) -> dict[int, dict[str, Any] | None]:
    """{run id: its decision record} for every compressed run; None where no dense base exists."""
    out: dict[int, dict[str, Any] | None] = {}
    for run in runs:
        if _is_dense(run):
            continue
        base = base_for(store, run, runs)
        out[run.id] = None if base is None else decision_record(store, base, run, margins=margins, alpha=alpha,
                                                                rules=rules)
    return out
