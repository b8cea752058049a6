"""Calibration-seed groups: K runs of one calibrated spec that differ only in the calibration seed
(`ctrust run --calib-seeds K`), and their pooled scores (store + trust; pure Python).

A run of a group carries `settings["calib_seed_group"] = {"id", "seeds", "seed"}`; the id hashes
everything the K runs share (model, spec, calibration but its seed, dimensions, profile, decoding
seed, limit, prompt format, scorer), so the same command finds the same K runs again and resumes
them. Runs outside a group have no such field and keep their identity. Each seed's variant is its
own folder and cache key already (compress.cache.variant_dir_name, runner.compression_label:
`gptq-3b-g64@c4-n32-l512-s1`); seed 0 with default calibration keeps the plain name.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .compare import require_rules
from .errors import CtrustError
from .store.db import RunRow, Store
from .trust import get_dimension
from .trust.rules import DEFAULT_RULES
from .trust.seed_variance import MAX_SEEDS, SeedVariance, two_level_bootstrap
from .trust.types import canonical_json, sha256_hex

GROUP_KEY = "calib_seed_group"


def check_calib_seeds(k: int | None, specs: Sequence[Any]) -> None:
    """`--calib-seeds K`: 1 <= K <= MAX_SEEDS and only calibrated specs (one clear line otherwise)."""
    if k is None:
        return
    if not isinstance(k, int) or not 1 <= k <= MAX_SEEDS:
        raise CtrustError(f"--calib-seeds must be between 1 and {MAX_SEEDS} (each seed is one compression and "
                          f"one run), got {k}")
    plain = [str(s) for s in specs if not s.calibrated]
    if plain:
        raise CtrustError(f"--calib-seeds varies the calibration data, but {', '.join(plain)} uses none; "
                          "give calibrated specs only (gptq, awq, sparsegpt, wanda)")


def calib_seeds(first: int, k: int) -> tuple[int, ...]:
    """The group's calibration seeds: `first` (the run's --seed) and the K-1 after it."""
    return tuple(range(first, first + k))


def group_entry(*, model: str, spec: str, calibration: Mapping[str, Any], seeds: Sequence[int],
                shared: Mapping[str, Any]) -> dict[str, Any]:
    """The settings field of one run of a group; `calibration` includes this run's seed."""
    calib = {k: v for k, v in calibration.items() if k != "seed"}
    key = {"model": model, "spec": spec, "calibration": calib, "seeds": list(seeds), **shared}
    return {"id": sha256_hex(canonical_json(key))[:12], "seeds": list(seeds), "seed": int(calibration["seed"])}


def group_of(run: RunRow) -> dict[str, Any] | None:
    """A run's calibration-seed group entry, or None for a run outside any group."""
    entry = (run.settings or {}).get(GROUP_KEY)
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("seeds"), list):
        return entry
    return None


def group_label(run: RunRow) -> str:
    """`seeds 1f2e3d4c5b6a 2/3` (this run's place in its group), or "" outside a group."""
    g = group_of(run)
    if g is None:
        return ""
    seeds = g["seeds"]
    place = seeds.index(g.get("seed")) + 1 if g.get("seed") in seeds else "?"
    return f"calib seeds {g['id']} {place}/{len(seeds)}"


@dataclass(frozen=True)
class SeedGroupReport:
    """Per dimension, the pooled score of one group's finished runs (one per seed)."""

    group: str
    compression: str  # the spec, without the calibration tag
    seeds: tuple[int, ...]
    run_ids: tuple[int, ...]
    missing: tuple[int, ...]  # seeds of the group with no finished run among those given
    dimensions: tuple[SeedVariance, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "compression": self.compression, "seeds": list(self.seeds),
                "run_ids": list(self.run_ids), "missing_seeds": list(self.missing),
                "dimensions": [d.to_dict() for d in self.dimensions]}


def seed_group_reports(store: Store, runs: Sequence[RunRow], *, rules: str = DEFAULT_RULES, n_boot: int = 1000,
                       seed: int = 0) -> list[SeedGroupReport]:
    """One report per group among `runs` (finished runs only; groups with fewer than 2 are skipped).
    A run without current verdicts under `rules` is refused (CtrustError naming `ctrust rescore`)."""
    groups: dict[str, list[tuple[int, RunRow]]] = defaultdict(list)
    for r in runs:
        g = group_of(r)
        if g is not None and r.status == "finished":
            groups[g["id"]].append((int(g.get("seed", 0)), r))
    out = []
    for gid, members in groups.items():
        by_seed = dict(sorted(members, key=lambda m: (m[0], m[1].id)))  # a seed run twice: its latest id
        if len(by_seed) < 2:
            continue
        entry = group_of(next(iter(by_seed.values())))
        assert entry is not None
        want = tuple(int(s) for s in entry["seeds"])
        runs_ = list(by_seed.values())
        for r in runs_:  # verdicts under these rules, from their current version (else: rescore first)
            require_rules(store, r, rules)
        dims = [d for d in runs_[0].dimensions if all(d in r.dimensions for r in runs_)]
        results = []
        for dim_id in dims:
            dim = get_dimension(dim_id)
            results.append(two_level_bootstrap(
                [store.judged(r.id, dim_id, rules) for r in runs_],
                lambda j, dim=dim: dim.score_only(j, rules), dimension=dim_id, n_boot=n_boot, seed=seed,
                stratum=dim.stratum))
        out.append(SeedGroupReport(gid, runs_[0].compression.split("@")[0], tuple(by_seed),
                                   tuple(r.id for r in runs_), tuple(s for s in want if s not in by_seed),
                                   tuple(results)))
    return out


__all__ = ["GROUP_KEY", "SeedGroupReport", "calib_seeds", "check_calib_seeds", "group_entry", "group_label",
           "group_of", "seed_group_reports"]
