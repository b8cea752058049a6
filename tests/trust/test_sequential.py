"""Adaptive evaluation: stratified prefixes, exact group-sequential boundaries, error control by simulation."""

from __future__ import annotations

import random
from collections import Counter

from ctrust_tui.trust.noninferiority import INCONCLUSIVE, NON_INFERIOR
from ctrust_tui.trust.paired import ScoreModel, StratumCounts
from ctrust_tui.trust.sequential import (
    SequentialDesign,
    boundaries,
    obf_spending,
    prefix_size,
    run_sequential,
    stratified_order,
)


def test_boundaries_match_published_obrien_fleming_values() -> None:
    # Lan-DeMets O'Brien-Fleming-type, 4 equal looks, one-sided 0.025 (e.g. Jennison & Turnbull, Table 2.x)
    c = boundaries((0.25, 0.5, 0.75, 1.0), 0.025)
    for got, want in zip(c, (4.333, 2.963, 2.359, 2.014)):
        assert abs(got - want) < 0.005
    assert abs(boundaries((1.0,), 0.025)[0] - 1.95996) < 1e-4
    assert abs(obf_spending(1.0, 0.025) - 0.025) < 1e-12 and obf_spending(0.25, 0.025) < 1e-4


def test_every_prefix_of_the_order_is_stratified() -> None:
    items = [("a", i) for i in range(30)] + [("b", i) for i in range(10)] + [("c", i) for i in range(2)]
    order = stratified_order(items, lambda x: x[0])
    assert sorted(order) == sorted(items)
    for k in range(1, len(order) + 1):
        counts = Counter(s for s, _ in order[:k])
        for s, n_s in (("a", 30), ("b", 10), ("c", 2)):
            assert abs(counts[s] - k * n_s / 42) <= 1.0 + 1e-9
    assert [i for s, i in order if s == "a"] == list(range(30))  # within a stratum the order is kept
    assert prefix_size(0.25, 81) == 21 and prefix_size(1.0, 81) == 81


def _sequence(rng: random.Random, n: int, strata: int, pu: float, pd: float) -> list[tuple[int, float]]:
    """(stratum, difference in {-1, 0, 1}) per prompt, in stratified order."""
    items = []
    for i in range(n):
        x = rng.random()
        items.append((i % strata, 1.0 if x < pu else (-1.0 if x < pu + pd else 0.0)))
    return stratified_order(items, lambda it: str(it[0]))


def _model_at(seq: list[tuple[int, float]], strata: int):
    """Prefix -> ScoreModel, from running per-stratum counts (equal stratum weights)."""
    running = [[0, 0, 0] for _ in range(strata)]
    snapshots = [None]
    for st, e in seq:
        running[st][0] += e > 0
        running[st][1] += e < 0
        running[st][2] += 1
        snapshots.append([tuple(c) for c in running])

    def model_at(k: int):
        counts = [c for c in snapshots[k] if c[2]]
        return ScoreModel(tuple(StratumCounts(1.0 / len(counts), u, d, n) for u, d, n in counts)), ""
    return model_at


def test_sequential_false_noninferior_rate_is_spent_not_multiplied() -> None:
    """2,000 sequences with the truth exactly at -margin (n = 100, 10 strata): a false "non-inferior"
    at any of the 4 looks stays <= alpha/2 (+1% simulation tolerance); naive repeated 95% tests do worse."""
    rng = random.Random(4)
    design = SequentialDesign(futility=0.0)
    sequential = naive = 0
    reps = 2000
    for r in range(reps):
        pu, pd = [(0.0, 0.05), (0.05, 0.10), (0.10, 0.15), (0.2, 0.25)][r % 4]
        seq = _sequence(rng, 100, 10, pu, pd)
        model_at = _model_at(seq, 10)
        out = run_sequential(100, model_at, design, margin=5.0)
        sequential += out.verdict == NON_INFERIOR
        naive += any(model_at(prefix_size(t, 100))[0].z(-5.0) > 1.96 for t in design.looks)
    assert sequential / reps <= 0.025 + 0.01, sequential / reps
    assert naive > sequential


def test_futility_stops_hopeless_dimensions_early_and_clear_ones_decide_early() -> None:
    rng = random.Random(8)
    design = SequentialDesign()
    # 80 prompts, churny, a 2-point margin: no verdict is reachable, stop after the first look(s)
    seq = _sequence(rng, 80, 8, 0.1, 0.1)
    out = run_sequential(80, _model_at(seq, 8), design, margin=2.0)
    assert out.verdict == INCONCLUSIVE and out.early and "futility" in out.reason
    # 400 prompts that never flip, 5-point margin: non-inferior before the last look
    seq = _sequence(rng, 400, 4, 0.0, 0.0)
    out = run_sequential(400, _model_at(seq, 4), design, margin=5.0)
    assert out.verdict == NON_INFERIOR and out.early and out.ci is not None and out.ci[0] > -5.0
