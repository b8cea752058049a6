"""The real `Backend`: a loaded (possibly compressed) model behind the runner's contract."""

from __future__ import annotations

from typing import Iterator, Sequence

from ..backend import BatchFn, ChunkFn, GenRequest, GenResult, StopFn
from ..trust.types import Message
from .generate import Generator, render_messages
from .loader import LoadedModel


class EngineBackend:
    def __init__(self, loaded: LoadedModel, *, model_fingerprint: str, compression: str,
                 max_batch: int | None = None, info: dict | None = None) -> None:
        self.loaded = loaded
        self.model_fingerprint = model_fingerprint
        self.compression = compression
        self.device = str(loaded.device)
        self.info = {
            "device": str(loaded.device),
            "dtype": str(loaded.dtype).replace("torch.", ""),
            "load_seconds": round(loaded.load_seconds, 2),
            "memory_bytes": loaded.memory_bytes,
            **(info or {}),
        }
        self._gen = Generator(loaded.model, loaded.tokenizer, loaded.device, max_batch=max_batch)

    @property
    def tokens_streamed(self) -> int:
        return self._gen.tokens_streamed

    def render(self, messages: Sequence[Message]) -> str:
        return render_messages(self.loaded.tokenizer, messages)

    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        return self._gen.generate(requests, on_chunks, should_stop, on_batch)

    def close(self) -> None:
        import gc

        import torch

        self._gen.model = None
        self.loaded.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
