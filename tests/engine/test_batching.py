"""Batch planning over token ids (pure Python): clusters of shared prefixes and batch cuts."""

from __future__ import annotations

import random

from ctrust_tui.engine.batching import MIN_SHARED_PREFIX, clusters, common_prefix_len, cut_batches


def test_common_prefix_len():
    assert common_prefix_len([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([], [1]) == 0


def _prompts(rng: random.Random) -> list[list[int]]:
    """Three few-shot families (long shared demos), identical samples, and unrelated prompts."""
    header = [1, 2, 3, 4]  # a short chat header shared by everything: not worth a prefix pass
    out = []
    for _family in range(3):
        demos = [rng.randrange(10, 1000) for _ in range(200)]
        out += [header + demos + [rng.randrange(10, 1000) for _ in range(rng.randrange(1, 40))] for _ in range(7)]
    same = header + [rng.randrange(10, 1000) for _ in range(60)]
    out += [list(same) for _ in range(4)]
    out += [header + [rng.randrange(10, 1000) for _ in range(rng.randrange(5, 300))] for _ in range(9)]
    return out


def test_clusters_partition_and_prefixes_are_truly_shared():
    rng = random.Random(0)
    ids = _prompts(rng)
    found = clusters(ids)
    members = sorted(i for m, _ in found for i in m)
    assert members == list(range(len(ids)))  # every prompt exactly once
    for m, p in found:
        if p == 0:
            continue
        assert len(m) > 1 and p >= MIN_SHARED_PREFIX
        for i in m:
            assert ids[i][:p] == ids[m[0]][:p]  # really common
            assert p <= len(ids[i]) - 1  # every row keeps a token to predict from
            assert p >= 0.5 * len(ids[i]) or p >= 0.5 * min(len(ids[j]) for j in m)


def test_clusters_find_families_samples_and_pool_the_rest():
    ids = _prompts(random.Random(1))
    found = clusters(ids)
    shared = sorted((sorted(m), p) for m, p in found if p)
    assert [m for m, _ in shared] == [list(range(0, 7)), list(range(7, 14)), list(range(14, 21)),
                                      list(range(21, 25))]
    assert all(p >= 204 for _, p in shared[:3])  # header + the 200 demonstrations
    assert shared[3][1] == len(ids[21]) - 1  # identical samples: all but the last token
    loose = [m for m, p in found if p == 0]
    assert loose == [sorted(range(25, 34), key=lambda i: (len(ids[i]), i))]  # one pool, by length


def test_short_common_header_is_not_a_cluster():
    ids = [[1] * 20 + [i] * 30 for i in range(2, 6)]  # 20 shared tokens < MIN_SHARED_PREFIX
    assert clusters(ids) == [(list(range(4)), 0)]


def test_small_fraction_is_not_a_cluster():
    ids = [[7] * 40 + [i] * 200 for i in range(2, 6)]  # 40 shared tokens of 240: under half
    assert clusters(ids) == [(list(range(4)), 0)]


def _cut(lengths, prefix, limit=lambda q, kv: 32, waste=1.25, savings=0):
    ids = [[0] * prefix + [i + 1] * n for i, n in enumerate(lengths)]
    items = [f"r{i}" for i in range(len(lengths))]
    return cut_batches(items, ids, prefix, limit=limit, max_pad_waste=waste, decode_savings_per_row=savings,
                       sort_key=str)


def test_cut_batches_sorts_by_suffix_and_limits_padding():
    batches = _cut([5, 400, 6, 7, 8], prefix=100)
    assert [list(b.items) for b in batches] == [["r0", "r2", "r3", "r4"], ["r1"]]
    assert all(b.prefix_len == 100 for b in batches)
    assert batches[0].prefix == (0,) * 100


def test_cut_batches_respects_the_device_limit_on_query_and_kv():
    seen = []

    def limit(q, kv):
        seen.append((q, kv))
        return 2

    batches = _cut([3, 3, 3, 3, 3], prefix=50, limit=limit)
    assert [len(b.items) for b in batches] == [2, 2, 1]
    assert all(kv == q + 50 for q, kv in seen)


def test_decode_savings_pay_for_padding():
    assert len(_cut([10, 200], prefix=0)) == 2
    assert len(_cut([10, 200], prefix=0, savings=400)) == 1


def test_split_keeps_prefix():
    (b,) = _cut([3, 4, 5], prefix=40)
    first, second = b.split()
    assert (len(first.items), len(second.items)) == (1, 2)
    assert first.prefix_len == second.prefix_len == 40
    assert first.ids + second.ids == b.ids


def test_small_savings_are_pooled_for_decode_batching():
    # 3 samples of each of 4 short prompts: sharing saves 2 x ~40 tokens per prompt, less than
    # decoding them in separate batches costs; all 12 rows pool together
    ids = [[i] * 40 + [99] for i in range(1, 5) for _ in range(3)]
    assert all(p > 0 for _, p in clusters(ids))  # without a saving threshold: 4 clusters
    assert len(clusters(ids)) == 4
    assert clusters(ids, min_saving=1200) == [(sorted(range(12), key=lambda i: (len(ids[i]), i)), 0)]
    # a long few-shot prefix still pays for itself
    long_ids = [[7] * 600 + [i] for i in range(10)]
    assert clusters(long_ids, min_saving=1200) == [(list(range(10)), 600)]
