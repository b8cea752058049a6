"""Load a model for generation: dense or compressed folder, or bitsandbytes at load time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..compress.spec import CompressionSpec
from ..errors import CtrustError
from ..modelstore import check_model_folder
from .device import pick_device, pick_dtype


@dataclass
class LoadedModel:
    """A model ready to generate, with what it took to load it (shown in run metadata)."""

    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    path: Path
    spec: CompressionSpec
    load_seconds: float
    memory_bytes: int


def model_memory_bytes(model: Any) -> int:
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        total += t.numel() * t.element_size()
    return total


def load_model(path: Path, spec: CompressionSpec | None = None, device: str | None = "auto") -> LoadedModel:
    """Load `path` for inference. `spec` matters only for bnb (load-time quantization)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress display owns the terminal

    spec = spec or CompressionSpec()
    check_model_folder(path)  # custom code, pickle-only weights, links out: refused before loading
    dev = pick_device(device)
    dtype = pick_dtype(dev)
    started = time.time()
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": False}
    if spec.kind == "bnb":
        from ..compress.bnb import bnb_quantization_config

        kwargs["quantization_config"] = bnb_quantization_config(spec, dtype)
        kwargs["device_map"] = "cpu" if dev.type == "cpu" else {"": dev.index or 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except Exception as exc:  # whatever a damaged folder makes transformers/tokenizers raise is the folder's fault
        raise CtrustError(f"cannot load model from {path}: {type(exc).__name__}: {exc}") from exc
    if spec.kind != "bnb":
        model.to(dev)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, dev, dtype, path, spec, time.time() - started, model_memory_bytes(model))
