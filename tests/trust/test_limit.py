"""`--limit N` draws N prompts across a dimension's strata, not the first N records."""

from __future__ import annotations

from collections import Counter

import pytest

from ctrust_tui.trust import DIMENSION_IDS, get_dimension, get_profile

QUICK = get_profile("quick")


@pytest.mark.parametrize("dim_id", DIMENSION_IDS)
def test_limit_reaches_every_stratum_and_keeps_profile_order(dim_id):
    dim = get_dimension(dim_id)
    every = dim.build_prompts(QUICK)
    strata = Counter(dim.stratum(r) for r in every)
    n = len(strata)
    picked = dim.prompts(QUICK, n)
    assert len(picked) == n
    if len(set(strata.values())) == 1:  # equal strata: one of each when the limit equals their number
        assert {dim.stratum(r) for r in picked} == set(strata)
    position = {r.key: i for i, r in enumerate(every)}
    assert [position[r.key] for r in picked] == sorted(position[r.key] for r in picked)
    assert [r.key for r in dim.prompts(QUICK, n)] == [r.key for r in picked]  # deterministic


@pytest.mark.parametrize("dim_id", DIMENSION_IDS)
def test_limit_is_proportional_and_whole_set_without_limit(dim_id):
    dim = get_dimension(dim_id)
    every = dim.build_prompts(QUICK)
    assert [r.key for r in dim.prompts(QUICK)] == [r.key for r in every]
    assert [r.key for r in dim.prompts(QUICK, len(every) + 5)] == [r.key for r in every]
    limit = max(1, len(every) // 2)
    sizes = Counter(dim.stratum(r) for r in every)
    got = Counter(dim.stratum(r) for r in dim.prompts(QUICK, limit))
    for s, n_s in sizes.items():  # within one of its share, as the stratified prefix promises
        assert abs(got[s] - limit * n_s / len(every)) <= 1.0 + 1e-9


@pytest.mark.parametrize("dim_id", ["advdemo", "ood", "toxicity"])
def test_all_scenario_aggregates_get_every_scenario_at_their_count(dim_id):
    """The paper reports no AdvDemo/OOD/toxicity score while a scenario is missing."""
    dim = get_dimension(dim_id)
    scen = {r.scenario for r in dim.build_prompts(QUICK)}
    assert {r.scenario for r in dim.prompts(QUICK, len(scen))} == scen


def test_first_records_would_have_missed_scenarios():
    """Why: quick toxicity's first 20 records cover 2 of its 8 configurations; the draw covers all 8."""
    tox = get_dimension("toxicity")
    first = tox.build_prompts(QUICK)[:20]
    assert len({tox.stratum(r) for r in first}) < 8
    assert len({tox.stratum(r) for r in tox.prompts(QUICK, 20)}) == 8
