"""Batch planning: which prompts generate together, and which prompt prefix they compute once.

DecodingTrust prompts are highly redundant: every AdvDemo prompt of one demonstration set repeats
the same 16 demonstrations, MMLU prompts of one subject repeat the same 5-shot examples, AdvGLUE
and stereotype prompts repeat their task instructions. On CPU, prefill (not decoding) dominates
these short-answer workloads and is already compute-bound for a single prompt, so batching alone
saves little there; computing a shared prefix's KV cache once per group of prompts removes the
redundant work itself (quick profile: 5.8x fewer prompt tokens for AdvDemo, 5.3x for AdvGLUE).

Pure Python over token id lists (no torch), so it is tested exhaustively and cheaply.

Plan, per group of requests with the same decoding parameters:
1. sort the prompts' token ids lexicographically: prompts sharing a prefix become neighbours,
   and the longest prefix shared by a run of neighbours is the minimum of their adjacent LCPs;
2. cut that order into *clusters* whose common prefix is at least `MIN_SHARED_PREFIX` tokens and
   at least `SHARED_FRACTION` of each member (smaller shared headers, e.g. a chat template's
   system prompt, are not worth a separate forward pass and a mid-sequence padding block);
3. clusters of one prompt are pooled into one prefix-less cluster;
4. within a cluster, sort by suffix length and cut batches by a memory limit and a padding-waste
   rule on the suffixes (padding is wasted compute where prefill is compute-bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")

MIN_SHARED_PREFIX = 32
SHARED_FRACTION = 0.5
PAD_SLACK_TOKENS = 64


@dataclass(frozen=True)
class PlannedBatch(Generic[T]):
    """Items generated together; the first `prefix_len` tokens are identical in every item."""

    items: tuple[T, ...]
    ids: tuple[tuple[int, ...], ...]
    prefix_len: int

    @property
    def prefix(self) -> tuple[int, ...]:
        return self.ids[0][: self.prefix_len]

    def split(self) -> tuple[PlannedBatch[T], PlannedBatch[T]]:
        """Two halves with the same prefix (out-of-memory back-off)."""
        h = len(self.items) // 2
        return (PlannedBatch(self.items[:h], self.ids[:h], self.prefix_len),
                PlannedBatch(self.items[h:], self.ids[h:], self.prefix_len))


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def clusters(ids: Sequence[Sequence[int]], *, min_shared: int = MIN_SHARED_PREFIX,
             fraction: float = SHARED_FRACTION, min_saving: int = 0) -> list[tuple[list[int], int]]:
    """Indices of `ids` grouped by a shared prefix worth computing once, with its length.

    Every returned prefix length leaves at least one token of each member's prompt outside the
    prefix (generation needs a last prompt token to predict from). Prefix-less prompts come last
    as one cluster with prefix length 0. A cluster whose sharing saves fewer than `min_saving`
    prompt tokens ((members - 1) x prefix) is pooled with them instead: it would otherwise
    decode alone, and for long generations batching the decoding steps is worth more (three
    samples of a short toxicity prompt must not become a batch of three).
    """
    order = sorted(range(len(ids)), key=lambda i: (tuple(ids[i]), i))
    out: list[tuple[list[int], int]] = []
    loose: list[int] = []
    cur: list[int] = []
    cur_lcp = cur_min = 0

    def close() -> None:
        prefix = min(cur_lcp, cur_min - 1)
        if len(cur) > 1 and (len(cur) - 1) * prefix >= min_saving:
            out.append((list(cur), prefix))
        else:
            loose.extend(cur)

    for i in order:
        n = len(ids[i])
        if cur:
            lcp = min(cur_lcp, common_prefix_len(ids[cur[-1]], ids[i]))
            shortest = min(cur_min, n)
            if min(lcp, shortest - 1) >= max(min_shared, fraction * shortest):
                cur.append(i)
                cur_lcp, cur_min = lcp, shortest
                continue
            close()
        cur, cur_lcp, cur_min = [i], n, n
    if cur:
        close()
    if loose:
        out.append((sorted(loose, key=lambda i: (len(ids[i]), i)), 0))
    return out


def cut_batches(items: Sequence[T], ids: Sequence[Sequence[int]], prefix_len: int, *,
                limit: Callable[[int, int], int], max_pad_waste: float, decode_savings_per_row: int,
                sort_key: Callable[[T], str]) -> list[PlannedBatch[T]]:
    """Cut one cluster into batches, shortest suffix first.

    `limit(query_len, kv_len)` is the largest batch the device takes for rows of that many new
    prompt tokens attending to that many positions. A row joins the current batch unless that
    exceeds the limit or makes the padded suffix tokens exceed `max_pad_waste` times the real
    ones, plus slack, plus `decode_savings_per_row` for every row already there (a row that joins
    shares the batch's decoding steps, which pays for some padding).
    """
    order = sorted(range(len(items)), key=lambda i: (len(ids[i]) - prefix_len, sort_key(items[i])))
    batches: list[PlannedBatch[T]] = []
    cur: list[int] = []
    cur_max = cur_sum = 0

    def close() -> None:
        batches.append(PlannedBatch(tuple(items[j] for j in cur), tuple(tuple(ids[j]) for j in cur), prefix_len))

    for i in order:
        length = len(ids[i]) - prefix_len
        longest = max(cur_max, length)
        padded = (len(cur) + 1) * longest
        too_padded = padded > (max_pad_waste * (cur_sum + length) + PAD_SLACK_TOKENS
                               + decode_savings_per_row * len(cur))
        if cur and (len(cur) + 1 > limit(longest, prefix_len + longest) or too_padded):
            close()
            cur, cur_max, cur_sum = [], 0, 0
            longest = length
        cur.append(i)
        cur_max = longest
        cur_sum += length
    if cur:
        close()
    return batches
