"""Batched, streaming generation with cooperative cancel and out-of-memory back-off.

DecodingTrust's Hugging Face path generates one prompt at a time; we batch prompts of
similar length (left padding, KV cache, `inference_mode`) and stream each sequence's new text
to a consumer in coalesced chunks: one callback per flush for the whole batch, never one per
token per sequence. Prompts that share a long prefix (few-shot demonstrations, task
instructions, n samples of one prompt) are planned together (`batching`) and that prefix's KV
cache is computed once and expanded over the batch. Greedy outputs are identical to
one-at-a-time `generate`.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import time
from typing import Any, Iterable, Iterator, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from ..backend import BatchFn, Chunk, ChunkFn, GenRequest, GenResult, StopFn
from ..errors import Cancelled
from ..trust.chat import completion_text, render_plain
from ..trust.types import Message
from .batching import PlannedBatch, clusters, cut_batches

CPU_MAX_BATCH = 32
CPU_MAX_BATCH_TOKENS = 32 * 768
# Batched prefill with a padding mask takes SDPA's math path, which materialises the
# (batch x heads x len x len) fp32 score matrix; one unpadded sequence uses the fused causal
# kernel. On CPU, cap that matrix so long few-shot prompts (fairness: ~4k tokens) run alone.
CPU_MAX_ATTN_BYTES = 512 * 2**20
# GPU: prompt tokens prefilled in one forward at most (vLLM's scheduler budgets ~8-16k per step; a batch
# step is one forward here, and its decode steps are cheap next to a prefill of this size)
GPU_PREFILL_TOKENS = 16384
# Padding is pure wasted compute where generation is compute-bound (CPU prefill): a batch is cut
# when its padded prompt tokens would exceed this multiple of its real prompt tokens (+ slack).
MAX_PAD_WASTE = {"cpu": 1.25, "cuda": 2.0}
# One decode step costs about as much as prefilling this many prompt tokens (the weights are read
# once per step for the whole batch): measured on CPU with the 135M model, 64 ms per batch-1 step
# against 2.6 ms per prefilled token. A prefix cluster decodes in batches of its own, so it must
# save more prefill than max_new_tokens such steps (toxicity: 3 samples of a short prompt must
# not become a batch of three when 32 prompts could decode together).
DECODE_STEP_TOKENS = {"cpu": 24, "cuda": 32}
# A row that joins a batch shares its decoding steps, which pays for some padding. Short-answer
# prompts stop at EOS long before max_new_tokens, so padding is credited at a third of the step
# cost on CPU: more would pad compute-bound prefills for steps that never run.
PAD_CREDIT_TOKENS = {"cpu": 8, "cuda": 32}
# Label-style decoding (max_new_tokens <= SHORT_ANSWER_MAX) usually ends at EOS after a few
# tokens; a prefix cluster's own decoding is costed at SHORT_ANSWER_STEPS steps there.
SHORT_ANSWER_MAX = 32
SHORT_ANSWER_STEPS = 8


def adds_bos(tokenizer: Any) -> bool:
    """Whether plain `tokenizer(text)` starts with BOS (Llama's sentencepiece tokenizers do, GPT-2 style
    byte-level ones mostly do not). Prompts are tokenized without special tokens (chat templates write
    their own BOS), so a raw completion prompt gets the BOS text prepended exactly when it would have one."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None or not getattr(tokenizer, "bos_token", None):
        return False
    with_special = tokenizer("a").input_ids
    plain = tokenizer("a", add_special_tokens=False).input_ids
    return len(with_special) > len(plain) and with_special[0] == bos_id


def render_messages(tokenizer: Any, messages: Sequence[Message]) -> str:
    """Apply the model's own chat template; merge the system turn if the template rejects it.

    A raw completion prompt (`trust.chat.completion_messages`) is not templated: its text, after the
    tokenizer's BOS where `tokenizer(text)` would add one (as comp-trust's MMLU script tokenizes it).
    """
    raw = completion_text(messages)
    if raw is not None:
        return (tokenizer.bos_token + raw) if adds_bos(tokenizer) else raw
    if not getattr(tokenizer, "chat_template", None):
        return render_plain(messages)
    dicts = [m.to_dict() for m in messages]
    try:
        return tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
    except Exception:
        if dicts and dicts[0]["role"] == "system" and len(dicts) > 1:
            merged = [{"role": dicts[1]["role"], "content": dicts[0]["content"] + "\n\n" + dicts[1]["content"]}]
            return tokenizer.apply_chat_template(merged + dicts[2:], tokenize=False, add_generation_prompt=True)
        raise


def batch_seed(batch: Sequence[GenRequest]) -> int:
    """RNG seed of a sampled batch: from the run seed and the first key, stable in every process.

    (Python's `hash()` of strings is salted per process, so it must not be used here: the same
    settings would sample differently after a restart.)
    """
    payload = f"{batch[0].seed}\x00{batch[0].key}".encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:4], "big") & 0x7FFFFFFF


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class _BatchStreamer(BaseStreamer):
    """Receives each step's tokens for the whole batch and flushes text deltas in chunks."""

    def __init__(self, tokenizer: Any, keys: Sequence[str], eos_ids: set[int], stops: Sequence[str],
                 on_chunks: ChunkFn | None, flush_every: float, counter: Generator | None = None) -> None:
        self.tok = tokenizer
        self.counter = counter  # its tokens_streamed grows with every decoded token (live tok/s)
        self.keys = list(keys)
        self.eos = eos_ids
        self.stops = [s for s in stops if s]
        self.on_chunks = on_chunks
        self.flush_every = flush_every
        self.tokens: list[list[int]] = [[] for _ in keys]
        self.done = [False] * len(keys)
        self.stopped = [False] * len(keys)
        self.sent = [""] * len(keys)
        self._prompt_seen = False
        self._last_flush = time.monotonic()

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first passes the prompt ids
            self._prompt_seen = True
            return
        ids = value.view(-1).tolist()
        new = 0
        for i, t in enumerate(ids):
            if self.done[i]:
                continue
            if t in self.eos:
                self.done[i] = True
                continue
            self.tokens[i].append(t)
            new += 1
        if self.counter is not None:
            self.counter.tokens_streamed += new
        if time.monotonic() - self._last_flush >= self.flush_every or self.stops:
            self.flush()

    def text(self, i: int) -> str:
        return self.tok.decode(self.tokens[i], skip_special_tokens=True)

    def flush(self, final: bool = False) -> None:
        self._last_flush = time.monotonic()
        chunks: list[Chunk] = []
        for i in range(len(self.keys)):
            if self.stopped[i]:
                continue
            full = self.text(i)
            if self.stops:
                full, hit = truncate_at_stop(full, self.stops)
                if hit:
                    self.stopped[i] = self.done[i] = True
            # hold back a trailing replacement char: a multi-byte character may be incomplete
            stable = full[:-1] if full.endswith("\ufffd") and not final else full
            if len(stable) > len(self.sent[i]) and stable.startswith(self.sent[i]):
                chunks.append((self.keys[i], stable[len(self.sent[i]):]))
                self.sent[i] = stable
        if chunks and self.on_chunks is not None:
            self.on_chunks(chunks)

    def end(self) -> None:
        self.flush(final=True)


class _StopCriteria(StoppingCriteria):
    """Per-row stop (stop strings seen by the streamer) and whole-batch cancel."""

    def __init__(self, streamer: _BatchStreamer, should_stop: StopFn | None) -> None:
        self.streamer = streamer
        self.should_stop = should_stop
        self.cancelled = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return torch.tensor(self.streamer.stopped, dtype=torch.bool, device=input_ids.device)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Generator:
    """Batched generation over one loaded model."""

    def __init__(self, model: Any, tokenizer: Any, device: torch.device, *, max_batch: int | None = None,
                 flush_every: float = 0.1, share_prefixes: bool = True) -> None:
        self.model = model
        self.share_prefixes = share_prefixes
        self._prefix: tuple[tuple[int, ...], Any] | None = None
        # transformers renamed generate's `past_key_values` to `cache` (5.2x); accept both
        prepare = getattr(model, "prepare_inputs_for_generation", None)
        params = inspect.signature(prepare).parameters if prepare is not None else {}
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self.tok = tokenizer
        self.device = device
        self.max_batch = max_batch
        self.flush_every = flush_every
        self.tokens_streamed = 0  # every token decoded so far, unfinished rows included
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            self.eos_ids.add(tokenizer.eos_token_id)

    # -- batching -----------------------------------------------------------------------
    def _batch_limit(self, query_len: int, kv_len: int, max_new: int) -> int:
        """Rows of `query_len` new prompt tokens (attending to `kv_len` positions) that fit."""
        per_seq = kv_len + max_new
        if self.device.type == "cuda":
            from .device import free_memory_bytes

            cfg = self.model.config
            layers = getattr(cfg, "num_hidden_layers", 32)
            kv_heads = getattr(cfg, "num_key_value_heads", None) or getattr(cfg, "num_attention_heads", 32)
            head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
            bytes_per_tok = 2 * layers * kv_heads * head_dim * 2 + 4 * cfg.vocab_size
            free = free_memory_bytes(self.device) or 0
            # rows whose KV cache fits in half the free memory, and whose prompt tokens fit one prefill
            # step's token budget (a step of many long prompts would otherwise hold up every short one)
            limit = max(1, int(0.5 * free / max(1, bytes_per_tok * per_seq)))
            limit = min(limit, max(1, GPU_PREFILL_TOKENS // max(1, query_len)))
        else:
            heads = getattr(self.model.config, "num_attention_heads", 32)
            attn = CPU_MAX_ATTN_BYTES // max(1, heads * (query_len + max_new) * per_seq * 4)
            # every row holds its own copy of a shared prefix's KV cache: memory counts all positions
            limit = max(1, min(CPU_MAX_BATCH, CPU_MAX_BATCH_TOKENS // max(1, per_seq), attn))
        return min(limit, self.max_batch) if self.max_batch else limit

    def _plan(self, requests: Sequence[GenRequest]) -> list[PlannedBatch[GenRequest]]:
        groups: dict[tuple, list[GenRequest]] = {}
        for r in requests:
            d = r.decoding
            groups.setdefault((d.max_new_tokens, d.temperature, d.top_p, d.stop), []).append(r)
        waste = MAX_PAD_WASTE.get(self.device.type, 2.0)
        step_tokens = DECODE_STEP_TOKENS.get(self.device.type, 24)
        pad_credit = PAD_CREDIT_TOKENS.get(self.device.type, 8)
        batches: list[PlannedBatch[GenRequest]] = []
        for items in groups.values():
            ids = [self.tok(r.prompt, add_special_tokens=False).input_ids for r in items]
            max_new = items[0].decoding.max_new_tokens
            # a cluster decodes in its own batches: its saved prefill must beat one batch's decoding
            steps = max_new if max_new > SHORT_ANSWER_MAX else min(max_new, SHORT_ANSWER_STEPS)
            found = (clusters(ids, min_saving=step_tokens * steps) if self.share_prefixes
                     else [(list(range(len(items))), 0)])
            for members, prefix_len in found:
                batches += cut_batches(
                    [items[i] for i in members], [ids[i] for i in members], prefix_len,
                    limit=lambda q, kv, m=max_new: self._batch_limit(q, kv, m),
                    max_pad_waste=waste, decode_savings_per_row=pad_credit * max_new,
                    sort_key=lambda r: r.key,
                )
        return batches

    def plan(self, requests: Sequence[GenRequest]) -> list[list[GenRequest]]:
        """Group by decoding params and shared prompt prefix, cut into memory-sized batches."""
        return [list(b.items) for b in self._plan(requests)]

    def _prefix_cache(self, prefix: tuple[int, ...]) -> Any | None:
        """KV cache of `prefix` (batch 1), computed once per cluster and reused by its batches."""
        if self._prefix is not None and self._prefix[0] == prefix:
            return self._prefix[1]
        self._prefix = None  # release the previous cluster's cache before computing a new one
        ids = torch.tensor([list(prefix)], device=self.device)
        out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)
        cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
        if cache is None or not hasattr(cache, "batch_repeat_interleave") or any(getattr(cache, "is_sliding", [])):
            cache = None  # sliding-window or unknown caches: generate the full prompts instead
        self._prefix = (prefix, cache)  # the verdict is kept too: no second wasted prefix pass
        return cache

    # -- generation ---------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        """Yield results batch by batch (so callers can commit them before the next batch)."""
        try:
            for batch in self._plan(requests):
                if should_stop is not None and should_stop():
                    raise Cancelled()
                if on_batch is not None:
                    on_batch([r.key for r in batch.items])
                yield from self._run_with_backoff(batch, on_chunks, should_stop)
        finally:
            self._prefix = None

    def _run_with_backoff(self, batch: PlannedBatch[GenRequest], on_chunks: ChunkFn | None,
                          should_stop: StopFn | None) -> Iterable[list[GenResult]]:
        try:
            yield self._run(batch, on_chunks, should_stop)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not _is_oom(exc) or len(batch.items) == 1:
                raise
            self._prefix = None
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            first, second = batch.split()
            self.max_batch = max(1, len(first.items))
            yield from self._run_with_backoff(first, on_chunks, should_stop)
            yield from self._run_with_backoff(second, on_chunks, should_stop)

    def _inputs(self, batch: PlannedBatch[GenRequest]) -> dict[str, Any]:
        """Token ids, attention mask and (with a shared prefix) its expanded KV cache.

        Without a prefix: left padding. With one, each row is `prefix + padding + suffix` and the
        padding is masked: position ids come from the mask's cumulative sum, so every suffix
        continues at the position right after the prefix, exactly as in its unpadded prompt.
        """
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        cache = self._prefix_cache(batch.prefix) if batch.prefix_len else None
        p = batch.prefix_len if cache is not None else 0
        width = max(len(x) for x in batch.ids) - p
        rows, mask = [], []
        for x in batch.ids:
            fill = width - (len(x) - p)
            rows.append(list(x[:p]) + [pad] * fill + list(x[p:]))
            mask.append([1] * p + [0] * fill + [1] * (len(x) - p))
        enc: dict[str, Any] = {
            "input_ids": torch.tensor(rows, device=self.device),
            "attention_mask": torch.tensor(mask, device=self.device),
        }
        if cache is not None:
            rows_cache = copy.deepcopy(cache)
            rows_cache.batch_repeat_interleave(len(batch.ids))
            enc[self._cache_kwarg] = rows_cache
        return enc

    @torch.inference_mode()
    def _run(self, batch: PlannedBatch[GenRequest], on_chunks: ChunkFn | None,
             should_stop: StopFn | None) -> list[GenResult]:
        started = time.time()
        reqs = list(batch.items)
        d = reqs[0].decoding
        enc = self._inputs(batch)
        streamer = _BatchStreamer(self.tok, [r.key for r in reqs], self.eos_ids, d.stop, on_chunks,
                                  self.flush_every, counter=self)
        criteria = _StopCriteria(streamer, should_stop)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": d.max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([criteria]),
            "pad_token_id": self.tok.pad_token_id,
        }
        if d.greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(do_sample=True, temperature=d.temperature, top_p=d.top_p, top_k=0)
        # sampled outputs are reproducible for the same batch composition and seed; the global
        # RNG state of the caller is left as it was
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if not d.greedy:
                torch.manual_seed(batch_seed(reqs))
            self.model.generate(**enc, **gen_kwargs)
        if criteria.cancelled:
            raise Cancelled()
        elapsed = time.time() - started
        results = []
        for i, r in enumerate(reqs):
            text = streamer.text(i)
            text, hit = truncate_at_stop(text, d.stop)
            finish = "stop" if hit or streamer.stopped[i] else ("eos" if streamer.done[i] else "length")
            results.append(GenResult(r.key, text, len(streamer.tokens[i]), finish, elapsed / len(reqs)))
        return results
