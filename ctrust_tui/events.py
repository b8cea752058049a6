"""Typed events the runner emits; the CLI and the TUI only consume these (pure Python).

Events are emitted from the runner's thread. Token streaming arrives as coalesced chunks for
many sequences at once so a UI can apply them in one update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .trust.types import DimensionResult


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    model: str
    compression: str
    dimensions: tuple[str, ...]
    profile: str
    total_generations: int
    cached_generations: int
    resumed: bool


@dataclass(frozen=True)
class CompressionProgress:
    compression: str
    layer: int
    n_layers: int
    step: str
    message: str = ""


@dataclass(frozen=True)
class ModelLoaded:
    compression: str
    info: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class PromptsStarted:
    """The rows now generating (so a UI can show them before tokens arrive): the static engine's
    batch, or the continuous scheduler's running set each time a request joins it."""

    run_id: int
    items: tuple[tuple[str, int, str, str], ...]  # (record id, sample index, dimension, prompt text)
    samples: tuple[int, ...] = ()  # per item: how many samples its record asks for (n), when known


@dataclass(frozen=True)
class TokensGenerated:
    run_id: int
    chunks: tuple[tuple[str, int, str], ...]  # (record id, sample index, new text)
    streamed: int = 0  # tokens decoded in this run so far, rows still generating included


@dataclass(frozen=True)
class GenerationFinished:
    run_id: int
    record_id: str
    dimension: str
    scenario: str
    prompt: str
    outputs: tuple[str, ...]
    verdict: Mapping[str, Any]
    cached: bool


@dataclass(frozen=True)
class Progress:
    run_id: int
    done: int
    total: int
    generated: int
    cached: int
    tokens: int
    tokens_per_s: float
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class DimensionScoreUpdated:
    run_id: int
    compression: str
    result: DimensionResult
    total: int
    final: bool


@dataclass(frozen=True)
class RunFinished:
    run_id: int
    compression: str
    results: tuple[DimensionResult, ...]
    generated: int
    cached: int
    seconds: float


@dataclass(frozen=True)
class RunFailed:
    run_id: int | None
    compression: str
    error: str


@dataclass(frozen=True)
class RunCancelled:
    run_id: int | None
    compression: str


@dataclass(frozen=True)
class Notice:
    message: str
    level: str = "info"  # info | warning | error


Event = (
    RunStarted | CompressionProgress | ModelLoaded | PromptsStarted | TokensGenerated | GenerationFinished
    | Progress | DimensionScoreUpdated | RunFinished | RunFailed | RunCancelled | Notice
)
