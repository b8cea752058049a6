"""`ctrust recommend`: the most compressed spec that is non-inferior to the dense base on every dimension.

Specs are ranked by effective bits per weight (what a real kernel would store, scales included),
then by sparsity: rtn-4b-g32 (4.5 b/w) > gptq-4b-g64 (4.25) > gptq-3b-g64 (3.25); pruned models
keep 16-bit weights and rank by their sparsity. The recommendation is the most compressed spec
whose every selected dimension is *non-inferior* at its margin (an inconclusive dimension does not
qualify: nothing was shown). Every more compressed spec is listed with the dimensions that kept it
out, their delta and interval. Ties (equally compressed, both qualifying) and "nothing qualifies"
are said in words. Pure Python over the store (runs are made by the runner beforehand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .compare import compare_runs
from .compress.bnb import nominal_bits_per_weight
from .compress.spec import CompressionSpec, parse_spec
from .errors import CtrustError
from .store.db import Store
from .trust.noninferiority import DEFAULT_ALPHA, NON_INFERIOR, Margins
from .trust.stats import PairedComparison

DENSE_BITS = 16.0  # a dense or pruned model stores 16-bit weights


def spec_of(label: str) -> CompressionSpec:
    """The spec of a run's compression label ('gptq-4b-g128@wikitext2-n32...' -> gptq-4b-g128)."""
    return parse_spec(label.split("@", 1)[0])


def bits_per_weight(spec: CompressionSpec) -> float:
    bits = nominal_bits_per_weight(spec)
    return DENSE_BITS if bits is None else float(bits)


def compression_rank(spec: CompressionSpec) -> tuple[float, float]:
    """Sort key, most compressed first: fewer bits per weight, then more sparsity."""
    return (round(bits_per_weight(spec), 6), -round(spec.target_sparsity or 0.0, 6))


@dataclass(frozen=True)
class Candidate:
    spec: str
    run_id: int
    bits: float
    sparsity: float
    comparisons: tuple[PairedComparison, ...]

    @property
    def qualifies(self) -> bool:
        return bool(self.comparisons) and all(
            c.decision is not None and c.decision.verdict == NON_INFERIOR for c in self.comparisons)

    @property
    def failing(self) -> tuple[PairedComparison, ...]:
        return tuple(c for c in self.comparisons if c.decision is None or c.decision.verdict != NON_INFERIOR)

    @property
    def rank(self) -> tuple[float, float]:
        return (round(self.bits, 6), -round(self.sparsity, 6))

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec, "run": self.run_id, "bits_per_weight": self.bits, "sparsity": self.sparsity,
            "qualifies": self.qualifies,
            "failing": [c.dimension for c in self.failing],
            "dimensions": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class Recommendation:
    base_run: int
    margins: Margins
    alpha: float
    rules: str
    candidates: tuple[Candidate, ...]  # most compressed first

    @property
    def chosen(self) -> tuple[Candidate, ...]:
        """The most compressed qualifying spec(s): more than one is a tie; none: nothing qualifies."""
        ok = [c for c in self.candidates if c.qualifies]
        if not ok:
            return ()
        best = ok[0].rank
        return tuple(c for c in ok if c.rank == best)

    @property
    def rejected(self) -> tuple[Candidate, ...]:
        """Specs more compressed than the choice (all of them when nothing qualifies)."""
        chosen = self.chosen
        if not chosen:
            return self.candidates
        return tuple(c for c in self.candidates if c.rank < chosen[0].rank)

    @property
    def less_compressed(self) -> tuple[Candidate, ...]:
        chosen = self.chosen
        if not chosen:
            return ()
        return tuple(c for c in self.candidates if c.rank > chosen[0].rank)

    @property
    def summary(self) -> str:
        chosen = self.chosen
        if not chosen:
            return ("nothing qualifies: no spec is non-inferior on every dimension "
                    f"(margin {_margin_text(self.margins)}); keep the dense model or run more prompts")
        if len(chosen) > 1:
            names = " and ".join(c.spec for c in chosen)
            return (f"tie: {names} are equally compressed ({chosen[0].bits:.2f} bits/weight, "
                    f"{chosen[0].sparsity:.0%} sparse) and both non-inferior on every dimension; either will do")
        c = chosen[0]
        return (f"{c.spec} (run #{c.run_id}, {c.bits:.2f} bits/weight, {c.sparsity:.0%} sparse) is the most "
                f"compressed spec non-inferior on every dimension (margin {_margin_text(self.margins)})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_run": self.base_run, "margin": self.margins.to_dict(), "alpha": self.alpha, "rules": self.rules,
            "recommendation": [c.spec for c in self.chosen], "tie": len(self.chosen) > 1,
            "nothing_qualifies": not self.chosen, "summary": self.summary,
            "rejected_more_compressed": [c.spec for c in self.rejected],
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _margin_text(m: Margins) -> str:
    extra = ", ".join(f"{k} {v:g}" for k, v in sorted(m.per_dimension.items()))
    return f"{m.default:g} points" + (f"; {extra}" if extra else "")


def recommend(store: Store, base_run: int, variant_runs: Sequence[int], *, margins: Margins,
              alpha: float = DEFAULT_ALPHA, rules: str = "paper",
              dimensions: Sequence[str] | None = None) -> Recommendation:
    """Decide between finished variant runs against the base run (see the module docstring)."""
    if len(variant_runs) < 2:
        raise CtrustError("recommend needs at least two compression specs to choose between; for one, use "
                          "`ctrust compare BASE VARIANT --margin M`")
    base = store.run(base_run)
    if base is None:
        raise CtrustError(f"no run #{base_run} in {store.path}")
    if not spec_of(base.compression).is_dense:
        raise CtrustError(f"run #{base_run} is {base.compression}, not the dense base model")
    cands = []
    for rid in variant_runs:
        run = store.run(rid)
        if run is None:
            raise CtrustError(f"no run #{rid} in {store.path}")
        comps = compare_runs(store, base_run, rid, rules=rules, margins=margins, alpha=alpha, dimensions=dimensions)
        cands.append(candidate(run.compression, rid, comps))
    return decide_between(base_run, cands, margins=margins, alpha=alpha, rules=rules)


def candidate(label: str, run_id: int, comparisons: Sequence[PairedComparison]) -> Candidate:
    spec = spec_of(label)
    return Candidate(label, run_id, bits_per_weight(spec), spec.target_sparsity or 0.0, tuple(comparisons))


def decide_between(base_run: int, candidates: Sequence[Candidate], *, margins: Margins, alpha: float,
                   rules: str) -> Recommendation:
    """The recommendation among candidates whose comparisons already carry their decisions."""
    return Recommendation(base_run, margins, alpha, rules,
                          tuple(sorted(candidates, key=lambda c: (c.rank, c.spec))))


def decision_cells(c: PairedComparison) -> tuple[str, str]:
    """('-11.9 [-23.7, -0.0]', 'inconclusive (+161)'): one dimension of one spec, as both tables show it."""
    d = c.decision
    delta = "—" if c.delta is None else f"{c.delta:+.1f}"
    ci = f" [{d.ci[0]:+.1f}, {d.ci[1]:+.1f}]" if d and d.ci else ""
    return delta + ci, (d.short if d else "")


def decision_label(rec: Recommendation, c: Candidate) -> str:
    """A spec's row outcome: recommended (or a tie), rejected with the dimensions that kept it out, or
    less compressed than the pick."""
    chosen = rec.chosen
    if any(x.run_id == c.run_id for x in chosen):
        return "tie: recommended" if len(chosen) > 1 else "recommended"
    if any(x.run_id == c.run_id for x in rec.rejected):
        return "rejected: " + "; ".join(x.dimension for x in c.failing)
    return "qualifies, less compressed" if c.qualifies else "less compressed"


def recommend_markdown(rec: Recommendation) -> str:
    """The decision table as markdown (a PR, a model card, docs/decisions.md), every cell escaped: spec
    labels and dimension names come from the cache, which is untrusted text."""
    from .textsafe import md_cell

    dims = [c.dimension for c in rec.candidates[0].comparisons] if rec.candidates else []
    head = ["spec", "run", "bits/w", "sparse", *(f"`{md_cell(d)}`" for d in dims), "decision"]
    lines = [f"Base run #{rec.base_run}, {md_cell(rec.rules)} rules, {100 * (1 - rec.alpha):.0f}% paired intervals: "
             f"{md_cell(rec.summary)}", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---:", "---:", "---:", *("---" for _ in dims), "---"]) + "|"]
    for c in rec.candidates:
        by = {x.dimension: x for x in c.comparisons}
        cells = [md_cell(c.spec), f"#{c.run_id}", f"{c.bits:.2f}", f"{c.sparsity:.0%}"]
        for d in dims:
            x = by.get(d)
            cells.append(md_cell(" ".join(decision_cells(x)).strip()) if x is not None and x.decision else "")
        label = md_cell(decision_label(rec, c))
        cells.append(f"**{label}**" if label.endswith("recommended") else label)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def failing_text(c: PairedComparison) -> str:
    """'ethics inferior −5.1 [−9.0, −1.2]' for the decision table."""
    d = c.decision
    value, verdict = decision_cells(c)
    why = f" ({d.reason})" if d and d.reason and d.verdict != "inconclusive" else ""
    return f"{c.dimension} {verdict or 'no verdict'} {value}{why}"
