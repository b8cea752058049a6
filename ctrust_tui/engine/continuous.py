"""Continuous batching: transformers' paged-attention scheduler behind the engine's `generate` contract.

The static engine (`generate.Generator`) runs planned batches to completion: a batch whose longest
row needs 150 tokens holds every finished row's slot, and a batch of long prompts holds up the
short ones queued behind it. Continuous batching (`model.init_continuous_batching`, transformers
>= 5.x) fills each forward step up to a token budget with decode tokens of running rows plus
chunks of waiting prompts (chunked prefill, as vLLM schedules), admits a new request as soon as a
row finishes, and shares KV pages of common prompt prefixes. It pays on a GPU, where a step's cost
barely grows with its rows, and on a CPU for long decodes: on 8 quick toxicity/stereotype prompts
(150 new tokens) it ran 62.6 s against the static engine's 112.0 s (rows that stop early free their
slot). For short answers after long shared prompts the static engine's prefix clusters win on a
CPU (50 quick classification prompts: 127 s static, 345 s continuous). So `auto` is continuous on
CUDA and, on a CPU, continuous only for decoding groups of more than SHORT_ANSWER_MAX new tokens and
at most CPU_CONTINUOUS_MAX_REQUESTS requests (docs/performance.md, "Continuous batching"); static on MPS.

Greedy outputs are the same tokens as `model.generate` on the prompts measured (fp32); sampled
ones are reproducible for the same requests and seed, like the static engine's.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from typing import Any, Iterator, Sequence

import torch

from ..backend import BatchFn, Chunk, ChunkFn, GenRequest, GenResult, StopFn
from ..errors import Cancelled
from .generate import GPU_PREFILL_TOKENS, SHORT_ANSWER_MAX, batch_seed, truncate_at_stop

SCHEDULERS = ("auto", "static", "continuous")
# Tokens one CPU step may process (prefill chunks + decode rows): a 512-token prefill runs at the
# compute-bound rate on the 135M model here, larger chunks only add attention-mask memory.
CPU_STEP_TOKENS = 1024
PAGE_SIZE = 64  # tokens per KV page: small enough that short prompts do not waste most of a page
KV_MEMORY_SHARE = 0.5  # of free device memory for the paged KV cache (as the static engine's KV budget)
CPU_KV_SHARE = 0.25  # of the available RAM at most for the KV cache on a CPU (the model and the OS need the rest)
RESULT_FLUSH_S = 2.0  # finished results are handed to the caller (and cached) at least this often
POLL_S = 0.05
# A cancel (or an error) stops the generation thread after its current step (a hard stop): the default stop first
# finishes every queued request, which took over 10 s on a 2-core CPU with ~100 sampled 150-token requests queued; the
# thread then stepped on a destroyed batch processor and printed transformers' traceback under the cancel message.
STOP_WAIT_S = 300.0  # one forward step, however slow the machine; never reached in practice


MIXED = "static+continuous"


def available_ram_bytes() -> int:
    """RAM available now (Linux `sysconf`); 8 GiB where the platform does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


class ContinuousUnsupported(RuntimeError):
    """The model cannot run under continuous batching (raised before anything was generated)."""


def resolve_scheduler(name: str, device_type: str) -> str:
    """`auto` -> continuous on CUDA; on a CPU MIXED: short answers on the static engine, long
    decodes on continuous batching (see the module docstring for the measurements); static on MPS
    (transformers warns that its paged cache is slow and memory-hungry there before torch 2.14,
    and it was never measured here)."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if name == "auto":
        return {"cuda": "continuous", "cpu": MIXED}.get(device_type, "static")
    return name


# On a CPU the paged path attends over the whole flattened batch, so its cost per step grows with the rows in
# flight: continuous batching beat the static engine at 8 long-decode requests (62.6 vs 112.0 s), was even at 16
# (72.2 vs 75.9 s), and with 125 sampled 150-token requests in one group finished 5 outputs in 27 minutes where
# the static engine finished them at ~10 per minute (docs/performance.md). Larger groups go to the static engine.
CPU_CONTINUOUS_MAX_REQUESTS = 16


def decoding_group(decoding: Any) -> tuple:
    """The requests one continuous-batching manager serves together: the same generation config."""
    return decoding.max_new_tokens, decoding.temperature, decoding.top_p, decoding.stop


def uses_continuous(scheduler: str, decoding: Any, group_size: int = 1) -> bool:
    """Whether a group of `group_size` requests with this decoding goes to continuous batching under a
    resolved scheduler (MIXED: long decodes in groups small enough for the CPU's paged attention)."""
    if scheduler == MIXED:
        return decoding.max_new_tokens > SHORT_ANSWER_MAX and group_size <= CPU_CONTINUOUS_MAX_REQUESTS
    return scheduler == "continuous"


class ContinuousGenerator:
    """Generation through one continuous-batching manager per decoding setting."""

    def __init__(self, model: Any, tokenizer: Any, device: torch.device, *, max_batch: int | None = None,
                 flush_every: float = 0.1, step_tokens: int | None = None) -> None:
        self.model = model
        self.tok = tokenizer
        self.device = device
        self.max_batch = max_batch
        self.flush_every = flush_every
        self.step_tokens = step_tokens or (GPU_PREFILL_TOKENS if device.type == "cuda" else CPU_STEP_TOKENS)
        self.tokens_streamed = 0
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            self.eos_ids.add(tokenizer.eos_token_id)

    def _kv_bytes_per_token(self) -> int:
        """Keys and values of one token over all layers, in the model's dtype."""
        cfg = self.model.config
        layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 32)
        heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 32)
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 4096)
        head_dim = getattr(cfg, "head_dim", None) or hidden // heads
        return 2 * layers * kv_heads * head_dim * torch.finfo(self.model.dtype).bits // 8

    def _configs(self, group: Sequence[GenRequest], ids: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        d = group[0].decoding
        gen = GenerationConfig(max_new_tokens=d.max_new_tokens, eos_token_id=sorted(self.eos_ids),
                               pad_token_id=self.tok.pad_token_id if self.tok.pad_token_id is not None else 0)
        if d.greedy:
            gen.do_sample = False
        else:  # top_k=0: nucleus sampling only, as the static engine and DecodingTrust sample
            gen.do_sample, gen.temperature, gen.top_p, gen.top_k = True, d.temperature, d.top_p, 0
        cfg: dict[str, Any] = dict(page_size=PAGE_SIZE, max_batch_tokens=self.step_tokens,
                                   auto_switch_to_flash=False,  # never fetch a kernel from a hub
                                   seed=batch_seed(group), max_requests_per_batch=self.max_batch or None)
        if self.device.type == "cuda":
            cfg["max_memory_percent"] = KV_MEMORY_SHARE
        else:
            # RAM is shared with everything else: size the cache for this workload (every request at
            # once, plus one page each of slack) within CPU_KV_SHARE of the available RAM, never the
            # library's 60% of free memory; requests beyond it wait for pages to free up
            pages = sum(math.ceil((len(x) + d.max_new_tokens) / PAGE_SIZE) + 1 for x in ids)
            longest = max(math.ceil((len(x) + d.max_new_tokens) / PAGE_SIZE) + 1 for x in ids)
            fit = int(CPU_KV_SHARE * available_ram_bytes()) // max(1, PAGE_SIZE * self._kv_bytes_per_token())
            cfg["num_blocks"] = max(16, longest, min(pages, fit))
        return gen, ContinuousBatchingConfig(**{k: v for k, v in cfg.items() if v is not None})

    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        """Yield finished results in groups (every RESULT_FLUSH_S) so the caller caches them as they come."""
        groups: dict[tuple, list[GenRequest]] = {}
        for r in requests:
            groups.setdefault(decoding_group(r.decoding), []).append(r)
        for group in groups.values():
            yield from self._run_group(group, on_chunks, should_stop, on_batch)

    @torch.inference_mode()
    def _run_group(self, group: Sequence[GenRequest], on_chunks: ChunkFn | None, should_stop: StopFn | None,
                   on_batch: BatchFn | None) -> Iterator[list[GenResult]]:
        d = group[0].decoding
        stops = [s for s in d.stop if s]
        ids = [self.tok(r.prompt, add_special_tokens=False).input_ids for r in group]
        gen_cfg, cb_cfg = self._configs(group, ids)
        init = getattr(self.model, "init_continuous_batching", None)
        if init is None:
            raise ContinuousUnsupported(f"{type(self.model).__name__} has no continuous batching")
        try:
            manager = init(generation_config=gen_cfg, continuous_batching_config=cb_cfg)
        except Exception as exc:  # an architecture or attention the paged cache does not support
            raise ContinuousUnsupported(f"{type(exc).__name__}: {exc}") from exc
        started = {r.key: time.time() for r in group}
        tokens: dict[str, list[int]] = {r.key: [] for r in group}
        sent: dict[str, str] = {r.key: "" for r in group}
        active: list[str] = []
        done: dict[str, GenResult] = {}
        pending: list[GenResult] = []
        last_flush = last_chunks = time.monotonic()
        chunks: list[Chunk] = []
        rows_changed = False  # a request joined the running set since the last report
        # every request queued before the loop starts: the first steps, and so the sampled tokens, never
        # depend on how fast this thread queued them; the caller's global RNG is restored afterwards
        for r, x in zip(group, ids):
            manager.add_request(x, request_id=r.key, max_new_tokens=d.max_new_tokens, streaming=True)
        rng = torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])
        rng.__enter__()
        try:
            manager.start()
            while len(done) < len(group):
                if should_stop is not None and should_stop():
                    raise Cancelled()
                out = manager.get_result(timeout=POLL_S)
                if out is None:
                    if not manager.is_running():
                        raise RuntimeError("continuous batching stopped before every request finished")
                elif out.request_id in tokens and out.request_id not in done:
                    key = out.request_id
                    if out.error is not None:
                        raise RuntimeError(f"continuous batching failed on a request: {out.error}")
                    if key not in active:
                        active.append(key)
                        rows_changed = True
                    new = [t for t in out.generated_tokens if t not in self.eos_ids]
                    self.tokens_streamed += max(0, len(new) - len(tokens[key]))
                    tokens[key] = new
                    text = self.tok.decode(new, skip_special_tokens=True)
                    text, hit = truncate_at_stop(text, stops)
                    stable = text if (out.is_finished() or hit) else text.removesuffix("\ufffd")
                    if len(stable) > len(sent[key]) and stable.startswith(sent[key]):
                        chunks.append((key, stable[len(sent[key]):]))
                        sent[key] = stable
                    if hit:  # later outputs of this request are ignored (it is done)
                        manager.cancel_request(key)
                    if out.is_finished() or hit:
                        ended_eos = len(out.generated_tokens) > len(new)
                        finish = "stop" if hit else ("eos" if ended_eos else "length")
                        res = GenResult(key, text, len(new), finish, time.time() - started[key])
                        done[key] = res
                        pending.append(res)
                        active.remove(key)
                now = time.monotonic()
                if now - last_chunks >= self.flush_every:  # the running set and new text, coalesced
                    if rows_changed and on_batch is not None:
                        on_batch(list(active))
                    if chunks and on_chunks is not None:
                        on_chunks(chunks)
                    chunks, last_chunks, rows_changed = [], now, False
                if pending and (now - last_flush >= RESULT_FLUSH_S or len(done) == len(group)):
                    if rows_changed and on_batch is not None:
                        on_batch(list(active))
                    if chunks and on_chunks is not None:
                        on_chunks(chunks)
                    chunks, last_chunks, rows_changed = [], now, False
                    yield [p for p in pending]
                    pending, last_flush = [], now
        finally:
            _stop(manager, hard=len(done) < len(group))
            manager.destroy()
            rng.__exit__(None, None, None)


def _stop(manager, hard: bool) -> None:
    """Stop the manager's thread and wait for it; a hard stop where transformers offers one (5.24 does; the
    floor, 5.0, may not), else the flushing stop with the same generous wait."""
    if hard and "hard_stop" in inspect.signature(manager.stop).parameters:
        manager.stop(block=True, timeout=STOP_WAIT_S, hard_stop=True)
    else:
        manager.stop(block=True, timeout=STOP_WAIT_S)
