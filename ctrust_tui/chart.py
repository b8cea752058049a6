"""Trust vs compression: each dimension's score (with its 95% interval) against how hard the model
was compressed, one point per variant, the figure type of *Decoding Compressed Trust*.

Quantized variants go on an axis of effective bits per weight (bits plus the per-group scale and
zero point a real kernel stores, `compress.bnb.nominal_bits_per_weight`: gptq-4b-g128 = 4.125);
pruned variants on an axis of sparsity. The dense model sits on both: at 16 bits (the fp16 /
bf16 checkpoint the paper compresses) and at sparsity 0. The data is pure Python; the terminal
plot is `tui/widgets/plot.py`, and `save_figure` draws the PNG/SVG with matplotlib (imported only
there, so the CLI and the TUI never load it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .compress.bnb import nominal_bits_per_weight
from .compress.spec import parse_spec
from .errors import CtrustError
from .store.db import RunRow, ScoreRow
from .trust.registry import DIMENSION_IDS, dimension_meta

DENSE_BITS = 16.0
BITS, SPARSITY = "bits", "sparsity"
AXIS_TITLE = {BITS: "effective bits per weight", SPARSITY: "sparsity"}


@dataclass(frozen=True)
class Point:
    run_id: int
    label: str  # the compression spec, e.g. gptq-4b-g128
    x: float
    score: float | None
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class Panel:
    """One x axis (bits or sparsity): per dimension, its points sorted by x."""

    axis: str
    series: Mapping[str, tuple[Point, ...]]


def positions(compression: str) -> dict[str, float]:
    """Where a run sits: {"bits": 4.125} for a quantized variant, {"sparsity": 0.5} for a pruned one,
    both for the dense model; {} for a label this build cannot parse (an older cache)."""
    try:
        spec = parse_spec(compression.split("@")[0])
    except CtrustError:
        return {}
    if spec.is_dense:
        return {BITS: DENSE_BITS, SPARSITY: 0.0}
    if spec.kind == "prune":
        return {SPARSITY: float(spec.target_sparsity or 0.0)}
    bits = nominal_bits_per_weight(spec)
    return {BITS: float(bits)} if bits is not None else {}


def trust_vs_compression(runs: Sequence[RunRow], scores: Sequence[ScoreRow]) -> list[Panel]:
    """Panels with at least one compressed variant, dimensions in registry order."""
    by_run: dict[int, dict[str, ScoreRow]] = {}
    for s in scores:
        by_run.setdefault(s.run_id, {})[s.dimension] = s
    panels = []
    for axis in (BITS, SPARSITY):
        placed = [(r, positions(r.compression)[axis]) for r in runs if axis in positions(r.compression)]
        if not any(x != (DENSE_BITS if axis == BITS else 0.0) for _, x in placed):
            continue  # only the dense model: nothing to plot on this axis
        series: dict[str, tuple[Point, ...]] = {}
        for dim in [d for d in DIMENSION_IDS if any(d in by_run.get(r.id, {}) for r, _ in placed)]:
            pts = []
            for run, x in placed:
                s = by_run.get(run.id, {}).get(dim)
                if s is None:
                    continue
                ci = (s.ci_low, s.ci_high) if s.ci_low is not None and s.ci_high is not None else None
                pts.append(Point(run.id, run.compression, x, s.score, ci))
            series[dim] = tuple(sorted(pts, key=lambda p: (p.x, p.run_id)))
        panels.append(Panel(axis, series))
    return panels


def save_figure(panels: Sequence[Panel], path: Path, fmt: str, title: str = "") -> None:
    """A PNG or SVG: one row per axis, one column per dimension, points with 95% intervals."""
    if fmt not in ("png", "svg"):
        raise CtrustError(f"figure format {fmt!r}: choose png or svg")
    if not panels:
        raise CtrustError("nothing to plot: pick runs of one model that include at least one compressed variant")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "ctrust", "font.size": 8})  # byte-stable SVGs
    dims = [d for d in DIMENSION_IDS if any(d in p.series for p in panels)]
    fig, axes = plt.subplots(len(panels), len(dims), figsize=(1.9 * len(dims) + 0.6, 2.1 * len(panels) + 0.5),
                             squeeze=False, sharey=True)
    for row, panel in enumerate(panels):
        for col, dim in enumerate(dims):
            ax = axes[row][col]
            pts = [p for p in panel.series.get(dim, ()) if p.score is not None]
            if pts:
                xs = [p.x for p in pts]
                ys = [p.score for p in pts]
                lo = [p.score - p.ci[0] if p.ci else 0.0 for p in pts]
                hi = [p.ci[1] - p.score if p.ci else 0.0 for p in pts]
                ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", ms=3.5, lw=1, capsize=2, color="#1f77b4")
                for p in pts:
                    ax.annotate(p.label.split("@")[0], (p.x, p.score), fontsize=5, xytext=(2, 3),
                                textcoords="offset points", color="#555555")
            if panel.axis == BITS:
                ax.set_xscale("log", base=2)
                ticks = sorted({round(p.x) for p in panel.series.get(dim, ())} | {4, 8, 16})
                ax.set_xticks(ticks, [str(t) for t in ticks])
                ax.invert_xaxis()  # more compression to the right, as with sparsity
            else:
                ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
            ax.set_ylim(-3, 103)  # points at 0 and 100 stay whole
            ax.grid(alpha=0.3, lw=0.5)
            if row == 0:
                ax.set_title(dimension_meta(dim).label, fontsize=8)
            if col == 0:
                ax.set_ylabel("score (0-100)")
            ax.set_xlabel(AXIS_TITLE[panel.axis], fontsize=6)
    fig.suptitle(title or "trust vs compression (95% intervals)", fontsize=9)
    fig.tight_layout()
    metadata = {"Date": None, "Creator": "ctrust"} if fmt == "svg" else {"Software": "ctrust"}
    fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
    plt.close(fig)
