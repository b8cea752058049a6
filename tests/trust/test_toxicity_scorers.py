"""Toxicity scorers: the offline default, Perspective request building (fake opener), the factory."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from ctrust_tui.errors import CtrustError
from ctrust_tui.scorers import resolve_toxicity_scorer
from ctrust_tui.trust.toxicity_scorers import (
    PERSPECTIVE_ENV,
    PERSPECTIVE_URL,
    PerspectiveScorer,
    ProfanityScorer,
)


def test_profanity_scorer_orders_clean_below_profane() -> None:
    scorer = ProfanityScorer()
    assert scorer.name == f"alt-profanity-check=={metadata.version('alt-profanity-check')}"
    clean, profane, empty = scorer.score(["Thank you for the lovely dinner.", "you are a fucking idiot", ""])
    assert 0.0 <= clean < 0.5 < profane <= 1.0
    assert 0.0 <= empty <= 1.0
    assert scorer.score([]) == []


def _answer(value: float) -> bytes:
    return json.dumps(
        {"attributeScores": {"TOXICITY": {"summaryScore": {"value": value, "type": "PROBABILITY"}}}}
    ).encode()


def test_perspective_builds_requests_and_spaces_them() -> None:
    seen: list[tuple[urllib.request.Request, float]] = []
    sleeps: list[float] = []

    def opener(request: urllib.request.Request, timeout: float) -> bytes:
        seen.append((request, timeout))
        return _answer(0.25 * len(seen))

    scorer = PerspectiveScorer(api_key="KEY123", opener=opener, sleep=sleeps.append)
    assert scorer.score(["first", "  ", "second"]) == [0.25, 0.0, 0.5]  # blank text: no request, 0
    assert len(seen) == 2 and sleeps == [1.0]  # one polite pause between the two requests
    request, timeout = seen[0]
    assert request.full_url == f"{PERSPECTIVE_URL}?key=KEY123"
    assert request.get_method() == "POST" and timeout == 30.0
    assert request.get_header("Content-type") == "application/json"
    assert json.loads(request.data) == {
        "comment": {"text": "first"},
        "languages": ["en"],
        "requestedAttributes": {"TOXICITY": {}},
        "doNotStore": True,
    }
    assert scorer.name == "perspective-api:TOXICITY@v1alpha1" and "KEY123" not in scorer.name


def _http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(PERSPECTIVE_URL, code, "boom", {}, io.BytesIO(b""))  # type: ignore[arg-type]


def test_perspective_retries_429_then_fails_clearly() -> None:
    calls = []

    def flaky(request: urllib.request.Request, timeout: float) -> bytes:
        calls.append(1)
        if len(calls) == 1:
            raise _http_error(429)
        return _answer(0.9)

    sleeps: list[float] = []
    assert PerspectiveScorer(api_key="k", opener=flaky, sleep=sleeps.append).score(["x"]) == [0.9]
    assert sleeps == [2.0]

    def forbidden(request: urllib.request.Request, timeout: float) -> bytes:
        raise _http_error(403)

    with pytest.raises(CtrustError, match="Perspective API error 403"):
        PerspectiveScorer(api_key="k", opener=forbidden, sleep=lambda s: None).score(["x"])
    with pytest.raises(CtrustError, match="unexpected answer"):
        PerspectiveScorer(api_key="k", opener=lambda r, t: b"{}", sleep=lambda s: None).score(["x"])


def test_factory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert isinstance(resolve_toxicity_scorer(None), ProfanityScorer)
    assert isinstance(resolve_toxicity_scorer("profanity"), ProfanityScorer)
    monkeypatch.delenv(PERSPECTIVE_ENV, raising=False)
    with pytest.raises(CtrustError, match=PERSPECTIVE_ENV):
        resolve_toxicity_scorer("perspective")
    monkeypatch.setenv(PERSPECTIVE_ENV, "abc")
    scorer = resolve_toxicity_scorer("perspective")
    assert isinstance(scorer, PerspectiveScorer) and scorer.api_key == "abc"
    with pytest.raises(CtrustError, match="unknown toxicity scorer"):
        resolve_toxicity_scorer("detoxify")
    with pytest.raises(CtrustError, match="no config.json"):
        resolve_toxicity_scorer(str(tmp_path))


def test_toxic_index() -> None:
    from ctrust_tui.engine.toxicity_hf import toxic_index

    assert toxic_index({0: "non-toxic", 1: "toxic"}) == 1
    assert toxic_index({0: "TOXIC", 1: "neutral"}) == 0
    assert toxic_index({0: "toxic", 1: "severe_toxic", 2: "obscene"}) == 0
    assert toxic_index({0: "nothate", 1: "hate", 2: "toxic_speech"}) == 2
    assert toxic_index({0: "LABEL_0", 1: "LABEL_1"}) == 1
    with pytest.raises(CtrustError):
        toxic_index({0: "a", 1: "b", 2: "c"})


def test_hf_scorer_from_a_tiny_local_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "you", "are", "nice", "idiot"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    fast.save_pretrained(tmp_path)
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(words),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
        num_labels=2,
        id2label={0: "non-toxic", 1: "toxic"},
        label2id={"non-toxic": 0, "toxic": 1},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)

    scorer = resolve_toxicity_scorer(str(tmp_path))
    assert scorer.name.startswith(f"hf:{tmp_path.name}@")
    scores = scorer.score(["you are nice", "you are an idiot", ""])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert scorer.score(["you are nice"]) == pytest.approx(scores[:1])  # deterministic
