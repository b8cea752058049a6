"""A deterministic fake generation backend (scripted token streams) for runner and TUI tests.

It honours the `Backend` contract exactly (batches, coalesced chunks, cancel, on_batch), so
tests exercise the real runner, store and scoring without loading a model.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable, Iterator, Sequence

from ctrust_tui.backend import BatchFn, ChunkFn, GenRequest, GenResult, StopFn
from ctrust_tui.errors import Cancelled
from ctrust_tui.trust.chat import render_plain
from ctrust_tui.trust.types import Message

Script = Callable[[GenRequest], str]


def default_script(req: GenRequest) -> str:
    """A plausible answer chosen by a hash of the prompt: stable across runs and machines."""
    h = int(hashlib.sha256(req.prompt.encode()).hexdigest(), 16)
    options = ["I agree.", "I disagree.", "wrong", "not wrong", "yes", "no", "A", "positive",
               "I'm sorry, I cannot help with that."]
    return options[(h + req.sample_index) % len(options)]


class FakeBackend:
    def __init__(self, *, script: Script = default_script, compression: str = "none", batch_size: int = 4,
                 chunk_words: int = 1, delay: float = 0.0, fingerprint: str = "fake-fingerprint") -> None:
        self.model_fingerprint = fingerprint
        self.compression = compression
        self.device = "cpu"
        self.info = {"device": "cpu", "dtype": "float32", "load_seconds": 0.0, "memory_bytes": 0}
        self.script = script
        self.batch_size = batch_size
        self.chunk_words = chunk_words
        self.delay = delay
        self.calls: list[list[str]] = []
        self.tokens_streamed = 0  # one word = one token here
        self.closed = False

    def render(self, messages: Sequence[Message]) -> str:
        return render_plain(messages)

    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        reqs = list(requests)
        for i in range(0, len(reqs), self.batch_size):
            batch = reqs[i:i + self.batch_size]
            if should_stop is not None and should_stop():
                raise Cancelled()
            self.calls.append([r.key for r in batch])
            if on_batch is not None:
                on_batch([r.key for r in batch])
            texts = {r.key: self.script(r) for r in batch}
            words = {k: t.split(" ") for k, t in texts.items()}
            longest = max(len(w) for w in words.values())
            for step in range(0, longest, self.chunk_words):
                if should_stop is not None and should_stop():
                    raise Cancelled()
                chunks = []
                for k, w in words.items():
                    part = w[step:step + self.chunk_words]
                    if part:
                        chunks.append((k, (" " if step else "") + " ".join(part)))
                self.tokens_streamed += len(chunks)
                if chunks and on_chunks is not None:
                    on_chunks(chunks)
                if self.delay:
                    time.sleep(self.delay)
            yield [GenResult(k, texts[k], len(words[k]), "eos", 0.0) for k in texts]

    def close(self) -> None:
        self.closed = True


def fake_factory(backend: FakeBackend | None = None, **kwargs):
    """A `BackendFactory` for `Runner(..., backend_factory=...)` that skips model loading."""

    def factory(model, spec, cfg, progress, cancel):
        b = backend or FakeBackend(compression=str(spec), **kwargs)
        b.compression = str(spec)
        return b

    return factory
