"""Load a model for generation: dense or compressed folder, or bitsandbytes at load time.

A packed variant (compressed-tensors `pack-quantized`, compress/packed.py) is decompressed
while loading (transformers' `CompressedTensorsConfig(dequantize=True)`): the model then holds
exactly the fake-quant weights ctrust evaluated, in the device's dtype. On a GPU a packed kernel
(vLLM, or transformers once it has int4 kernels) could run it without decompressing; ctrust's
engine does not yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..compress.packed import is_packed_folder
from ..compress.spec import CompressionSpec
from ..errors import CtrustError
from ..modelstore import check_model_folder
from .device import pick_device
from .dtype import DtypeChoice, effective_request, resolve_dtype


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
    dtype_reason: str = ""  # how the dtype was chosen (requested, or the CPU probe's measurement)


def model_memory_bytes(model: Any) -> int:
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        total += t.numel() * t.element_size()
    return total


def _quiet(packed: bool):
    if packed:
        from ..compress.packed import quiet_ct

        return quiet_ct()
    import contextlib

    return contextlib.nullcontext()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _choose_dtype(path: Path, dev: torch.device, requested: str) -> DtypeChoice:
    """`--dtype` resolved before loading: the CPU probe needs only the config's shapes."""
    config = None
    if effective_request(requested) == "auto" and dev.type == "cpu":
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
        except Exception as exc:  # a damaged or custom-code folder: the same line the load would give
            raise CtrustError(f"cannot load model from {path}: {_one_line(exc)}") from exc
    return resolve_dtype(requested, dev, config)


def load_model(path: Path, spec: CompressionSpec | None = None, device: str | None = "auto",
               dtype: str = "auto") -> LoadedModel:
    """Load `path` for inference in `dtype` (auto | fp32 | bf16 | fp16, engine.dtype).
    `spec` matters only for bnb (load-time quantization)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress display owns the terminal

    spec = spec or CompressionSpec()
    check_model_folder(path)  # custom code, pickle-only weights, links out: refused before loading
    dev = pick_device(device)
    choice = _choose_dtype(path, dev, dtype)
    started = time.time()
    kwargs: dict[str, Any] = {"dtype": choice.dtype, "trust_remote_code": False}
    packed = is_packed_folder(path)
    if packed:
        from transformers import CompressedTensorsConfig

        from ..compress.packed import check_packed_folder

        check_packed_folder(path)  # a damaged packed folder fails here with one line, not mid-load
        kwargs["quantization_config"] = CompressedTensorsConfig(dequantize=True)
    if spec.kind == "bnb":
        if packed:
            raise CtrustError(f"{Path(path).name} is already quantized (compressed-tensors); "
                              f"{spec} quantizes a dense model at load time: use its base model")
        from ..compress.bnb import bnb_quantization_config

        kwargs["quantization_config"] = bnb_quantization_config(spec, choice.dtype)
        kwargs["device_map"] = "cpu" if dev.type == "cpu" else {"": dev.index or 0}
    try:
        with _quiet(packed):
            model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except ImportError as exc:
        raise CtrustError(f"cannot load the packed model in {path}: {exc}") from exc
    except Exception as exc:  # whatever a damaged folder makes transformers/tokenizers raise is the folder's fault
        what = "packed (compressed-tensors) model" if packed else "model"
        raise CtrustError(f"cannot load {what} from {path}: {_one_line(exc)}") from exc
    if spec.kind != "bnb":
        model.to(dev)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, dev, choice.dtype, path, spec, time.time() - started,
                       model_memory_bytes(model), choice.reason)
