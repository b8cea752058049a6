"""The real `Backend`: a loaded (possibly compressed) model behind the runner's contract."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterator, Sequence

from ..backend import BatchFn, ChunkFn, GenRequest, GenResult, StopFn
from ..trust.prompt_format import MODEL, ForkTemplate, fork_template_for
from ..trust.types import Message
from .continuous import (
    ContinuousGenerator,
    ContinuousUnsupported,
    decoding_group,
    resolve_scheduler,
    uses_continuous,
)
from .generate import Generator, adds_bos, render_messages
from .loader import LoadedModel


def _fork_template(loaded: LoadedModel, prompt_format: str) -> ForkTemplate | None:
    if prompt_format == MODEL:
        return None
    cfg = getattr(loaded.model, "config", None)
    tok = loaded.tokenizer
    return fork_template_for(prompt_format, model_type=str(getattr(cfg, "model_type", "")),
                             name=str(getattr(cfg, "_name_or_path", "")),
                             chat_template=getattr(tok, "chat_template", None))


class EngineBackend:
    def __init__(self, loaded: LoadedModel, *, model_fingerprint: str, compression: str,
                 max_batch: int | None = None, info: dict | None = None, prompt_format: str = MODEL,
                 scheduler: str = "auto") -> None:
        self.loaded = loaded
        self._fork = _fork_template(loaded, prompt_format)
        # the fork tokenized the rendered text with the tokenizer's defaults: its BOS, where it adds one
        self._bos = loaded.tokenizer.bos_token if self._fork and adds_bos(loaded.tokenizer) else ""
        self.model_fingerprint = model_fingerprint
        self.compression = compression
        self.device = str(loaded.device)
        self.info = {
            "device": str(loaded.device),
            "dtype": str(loaded.dtype).replace("torch.", ""),
            "dtype_choice": loaded.dtype_reason,
            "load_seconds": round(loaded.load_seconds, 2),
            "memory_bytes": loaded.memory_bytes,
            "prompt_format": f"fork:{self._fork.name}" if self._fork else MODEL,
            "scheduler": resolve_scheduler(scheduler, loaded.device.type),
            **(info or {}),
        }
        self._gen = Generator(loaded.model, loaded.tokenizer, loaded.device, max_batch=max_batch)
        self._cb = ContinuousGenerator(loaded.model, loaded.tokenizer, loaded.device, max_batch=max_batch)

    @property
    def tokens_streamed(self) -> int:
        return self._gen.tokens_streamed + self._cb.tokens_streamed

    def _generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None, should_stop: StopFn | None,
                  on_batch: BatchFn | None) -> Iterator[list[GenResult]]:
        """Each request to the scheduler its decoding is routed to (continuous.uses_continuous)."""
        cont: list[GenRequest] = []
        static: list[GenRequest] = []
        sizes = Counter(decoding_group(r.decoding) for r in requests)  # one manager per group
        for r in requests:
            size = sizes[decoding_group(r.decoding)]
            (cont if uses_continuous(self.info["scheduler"], r.decoding, size) else static).append(r)
        if static:
            yield from self._gen.generate(static, on_chunks, should_stop, on_batch)
        if not cont:
            return
        done: set[str] = set()
        try:
            for batch in self._cb.generate(cont, on_chunks, should_stop, on_batch):
                done.update(r.key for r in batch)
                yield batch
        except ContinuousUnsupported as exc:  # this model: static batches for the rest of the run
            self.info["scheduler"] = "static"
            self.info["scheduler_note"] = f"continuous batching unavailable ({str(exc)[:160]})"
            yield from self._gen.generate([r for r in cont if r.key not in done], on_chunks, should_stop, on_batch)

    def render(self, messages: Sequence[Message]) -> str:
        if self._fork is not None:
            return self._bos + self._fork.render(messages)  # a completion prompt passes through verbatim
        return render_messages(self.loaded.tokenizer, messages)

    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        batches = self._generate(requests, on_chunks, should_stop, on_batch)
        fork = self._fork
        if fork is None or not fork.stop_str:
            return batches
        return ([dataclasses.replace(r, text=fork.postprocess(r.text)) for r in batch] for batch in batches)

    def close(self) -> None:
        import gc

        import torch

        self._gen.model = self._cb.model = None
        self.loaded.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
