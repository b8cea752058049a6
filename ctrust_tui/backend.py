"""What the runner needs from a generation engine (pure contract, no torch).

The real engine (`engine.backend.EngineBackend`) and the deterministic fake used by the TUI
tests both implement `Backend`, so the runner and the app never know which one they drive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

from .trust.types import Decoding, Message

Chunk = tuple[str, str]  # (request key, new text)
ChunkFn = Callable[[list[Chunk]], None]
StopFn = Callable[[], bool]
BatchFn = Callable[[Sequence[str]], None]  # keys of the batch about to generate


@dataclass(frozen=True)
class GenRequest:
    key: str
    prompt: str  # rendered text (chat template applied)
    decoding: Decoding
    sample_index: int = 0
    seed: int = 0


@dataclass(frozen=True)
class GenResult:
    key: str
    text: str
    n_tokens: int
    finish: str  # "eos" | "length" | "stop"
    seconds: float


class Backend(Protocol):
    # identity of the weights that generate: the base model's, or the compressed variant folder's
    # (bnb quantizes the base at load time: the base's); keys every cached generation
    model_fingerprint: str
    compression: str  # canonical spec string (+ calibration tag when non-default)
    device: str
    info: dict
    # tokens decoded so far by generate(), rows still generating included: live tokens/s during a
    # long batch (GenResult.n_tokens only arrives when the batch ends)
    tokens_streamed: int

    def render(self, messages: Sequence[Message]) -> str: ...

    # Optional: `render_many(list of message lists) -> list[str]`, the same texts as `render` in one
    # call. `runner.plan_generations` uses it when present (the Ray engine's remote worker: one
    # round trip per cell instead of one per prompt).

    def generate(self, requests: Sequence[GenRequest], on_chunks: ChunkFn | None = None,
                 should_stop: StopFn | None = None, on_batch: BatchFn | None = None) -> Iterator[list[GenResult]]:
        """Yield results batch by batch; raise `errors.Cancelled` when `should_stop()` turns true."""
        ...

    def close(self) -> None: ...
