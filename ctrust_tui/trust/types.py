"""Value types shared by every trust dimension (pure Python, JSON-round-trippable).

A `PromptRecord` is the unit of evaluation: chat messages, how to decode them, and the
`context` a scorer needs (gold `label` within `options`, secret `target`, ...). A `Verdict`
is what one record's output(s) mean for trust. These are also the `ctrust prompts` /
`ctrust score` JSONL contracts, so their field names are stable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


def canonical_json(obj: Any) -> str:
    """Deterministic JSON used for hashing (sorted keys, no whitespace, UTF-8 kept)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Decoding:
    """How to generate for one prompt. temperature 0 means greedy."""

    max_new_tokens: int
    temperature: float = 0.0
    n: int = 1
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "n": self.n,
            "top_p": self.top_p,
            "stop": list(self.stop),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Decoding":
        return cls(
            max_new_tokens=int(d["max_new_tokens"]),
            temperature=float(d.get("temperature", 0.0)),
            n=int(d.get("n", 1)),
            top_p=float(d.get("top_p", 1.0)),
            stop=tuple(d.get("stop", ())),
        )


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class PromptRecord:
    """One evaluation prompt. `id` is stable across runs: `<dimension>/<scenario>/<index>`."""

    id: str
    dimension: str
    scenario: str
    messages: tuple[Message, ...]
    decoding: Decoding
    context: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dimension": self.dimension,
            "scenario": self.scenario,
            "messages": [m.to_dict() for m in self.messages],
            "decoding": self.decoding.to_dict(),
            "context": dict(self.context),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PromptRecord":
        return cls(
            id=str(d["id"]),
            dimension=str(d["dimension"]),
            scenario=str(d["scenario"]),
            messages=tuple(Message(str(m["role"]), str(m["content"])) for m in d["messages"]),
            decoding=Decoding.from_dict(d["decoding"]),
            context=dict(d.get("context", {})),
        )

    @property
    def key(self) -> str:
        """Content hash of the whole record (messages, decoding, context)."""
        return sha256_hex(canonical_json(self.to_dict()))[:32]

    @property
    def user_text(self) -> str:
        """The last user message, which is what a person reads as 'the prompt'."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return self.messages[-1].content if self.messages else ""


@dataclass(frozen=True)
class Verdict:
    """What one record's output(s) mean. `verdict` uses each dimension's documented vocabulary.

    `correct` / `refusal` / `leak` are None where they do not apply. `extra` holds
    dimension-specific fields (toxicity score, parsed prediction, leak kind, ...).
    """

    verdict: str
    refusal: bool = False
    correct: bool | None = None
    leak: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"verdict": self.verdict, "refusal": self.refusal}
        if self.correct is not None:
            d["correct"] = self.correct
        if self.leak is not None:
            d["leak"] = self.leak
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Verdict":
        extra = {k: v for k, v in d.items() if k not in {"verdict", "refusal", "correct", "leak"}}
        return cls(
            verdict=str(d["verdict"]),
            refusal=bool(d.get("refusal", False)),
            correct=d.get("correct"),
            leak=d.get("leak"),
            extra=extra,
        )


Judged = tuple[PromptRecord, Verdict]


@dataclass(frozen=True)
class DimensionResult:
    """A dimension's aggregate: 0-100 score (higher = more trustworthy) with a 95% interval."""

    dimension: str
    score: float | None
    ci95: tuple[float, float] | None
    refusal_rate: float | None  # fraction 0..1 refusing, as the rule set defines refusal for this dimension
    n: int
    scenarios: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    scorer: str | None = None
    rules: str = "paper"
    refusal_phrase_rate: float | None = None  # generic refusal-phrase share of outputs (rule-independent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "score": self.score,
            "ci95": list(self.ci95) if self.ci95 else None,
            "refusal_rate": self.refusal_rate,
            "n": self.n,
            "scenarios": {k: dict(v) for k, v in self.scenarios.items()},
            "scorer": self.scorer,
            "rules": self.rules,
            "refusal_phrase_rate": self.refusal_phrase_rate,
        }


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
