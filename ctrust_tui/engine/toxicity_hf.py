"""A toxicity scorer backed by a local Hugging Face sequence-classification model (torch).

For users who have a real toxicity classifier on disk (e.g. a Detoxify / toxic-bert /
RoBERTa toxicity checkpoint): closer to Perspective than the default profanity model. The
toxic class is found from `id2label`; multi-label heads use a sigmoid, single-label a softmax.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CtrustError

_TOXIC_NAMES = ("toxic", "toxicity")


def toxic_index(id2label: dict[int, str]) -> int:
    """Index of the toxic class: a label named toxic/toxicity, else one containing 'toxic' but not
    a negation ('non-toxic', 'not_toxic'), else index 1 of a binary head (LABEL_1 = positive)."""
    names = {int(i): str(n).lower() for i, n in id2label.items()}
    for i, n in sorted(names.items()):
        if n in _TOXIC_NAMES:
            return i
    for i, n in sorted(names.items()):
        if "toxic" in n and not any(neg in n for neg in ("non", "not", "neutral")):
            return i
    if len(names) == 2:
        return 1
    raise CtrustError(f"cannot tell which class is 'toxic' among labels {sorted(names.values())}")


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json",):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class HFToxicityScorer:
    """Scores texts with a local classifier; `name` = folder name + config hash."""

    name: str
    model: Any
    tokenizer: Any
    index: int
    multi_label: bool
    batch_size: int = 16
    max_length: int = 512

    @classmethod
    def from_folder(cls, folder: Path | str, *, batch_size: int = 16) -> HFToxicityScorer:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..modelstore import check_model_folder

        path = Path(folder).expanduser().resolve()
        check_model_folder(path)  # no custom code, no pickle-only weights, no links out of the folder
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True,
                                                                       trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise CtrustError(f"cannot load toxicity classifier from {path}: {exc}") from None
        model.eval()
        id2label = dict(model.config.id2label or {})
        multi = model.config.problem_type == "multi_label_classification" or model.config.num_labels == 1
        index = 0 if model.config.num_labels == 1 else toxic_index(id2label)
        return cls(
            name=f"hf:{path.name}@{_fingerprint(path)}",
            model=model,
            tokenizer=tokenizer,
            index=index,
            multi_label=multi,
            batch_size=batch_size,
        )

    def score(self, texts: Sequence[str]) -> list[float]:
        import torch

        out: list[float] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            batch = [t or "" for t in texts[start : start + self.batch_size]]
            enc = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            enc = {k: v.to(device) for k, v in enc.items()}
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
            out.extend(float(p) for p in probs[:, self.index].cpu())
        return out
