"""bitsandbytes load-time quantization (int8 / nf4 / fp4) and memory accounting.

bnb specs write no folder: the engine passes `bnb_quantization_config(spec, dtype)` as
`quantization_config=` to `from_pretrained` (on CPU with `device_map="cpu"` and an explicit
compute dtype; bitsandbytes >= 0.45 runs all three variants on CPU with transformers 5).

Settings (fixed, recorded by `bnb_settings`):
- `bnb-int8`: LLM.int8() (`load_in_8bit`), outlier threshold 6.0, int8 weights with one float32
  scale per output row (8 + 32/in_features bits per weight).
- `bnb-nf4` / `bnb-fp4`: 4-bit NormalFloat / FP4 in blocks of 64 with one float32 absmax per
  block (4 + 32/64 = 4.5 bits per weight); no double quantization, so the numbers stay easy
  to reason about; compute in `compute_dtype`.
Embeddings, lm_head and norms stay in the compute dtype (transformers' default skip list).

`memory_report(model)` works on any loaded model (dense, fake-quantized or bnb) and counts the
bytes really held in memory, including bnb's per-row / per-block scales.

torch and transformers are imported lazily so that importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidSpec
from .spec import BNB_VARIANTS, CompressionSpec

INT8_THRESHOLD = 6.0
BLOCKSIZE_4BIT = 64  # bitsandbytes' default 4-bit block


def bnb_settings(spec: CompressionSpec) -> dict[str, Any]:
    """The bnb settings a spec maps to, as plain JSON-able values (for metadata and the TUI)."""
    if spec.method != "bnb" or spec.variant not in BNB_VARIANTS:
        raise InvalidSpec(
            f"{spec} is not a bitsandbytes spec; choose one of " + ", ".join(f"bnb-{v}" for v in BNB_VARIANTS)
        )
    if spec.variant == "int8":
        return {"load_in_8bit": True, "llm_int8_threshold": INT8_THRESHOLD}
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": spec.variant,
        "bnb_4bit_use_double_quant": False,
        "blocksize": BLOCKSIZE_4BIT,
    }


def bnb_quantization_config(spec: CompressionSpec, compute_dtype: Any = None):
    """`transformers.BitsAndBytesConfig` for `bnb-int8` / `bnb-nf4` / `bnb-fp4`.

    `compute_dtype` is a torch dtype (or its name, e.g. "float32"); default float32 (CPU-safe).
    Raises InvalidSpec naming the valid variants for any other spec.
    """
    import torch
    from transformers import BitsAndBytesConfig

    settings = bnb_settings(spec)
    if compute_dtype is None:
        compute_dtype = torch.float32
    elif isinstance(compute_dtype, str):
        compute_dtype = getattr(torch, compute_dtype.replace("torch.", ""))
    if spec.variant == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=settings["llm_int8_threshold"])
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=spec.variant,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=False,
    )


def nominal_bits_per_weight(spec: CompressionSpec, in_features: int | None = None) -> float | None:
    """Storage bits per linear weight a real kernel would need for `spec` (None for dense/pruned).

    Fake-quantized methods (GPTQ/AWQ/RTN) hold dense float weights in memory; this is what the
    quantized format would cost: bits + (fp16 scale [+ a `bits`-wide zero point]) per group.
    """
    if spec.method == "bnb":
        if spec.variant == "int8":
            return 8 + 32 / in_features if in_features else 8.0
        return 4 + 32 / BLOCKSIZE_4BIT
    if spec.kind == "quant" and spec.bits:
        group = spec.group_size if spec.group_size > 0 else in_features
        zero_bits = spec.bits if _uses_zero_point(spec) else 0
        if not group:
            return float(spec.bits)
        return spec.bits + (16 + zero_bits) / group
    return None


def _uses_zero_point(spec: CompressionSpec) -> bool:
    return not spec.sym  # AWQ's default is asymmetric (CompressionSpec fills sym from the method)


def _tensor_bytes(t, seen: set) -> int:
    import torch

    if not isinstance(t, torch.Tensor) or t.device.type == "meta":
        return 0
    try:
        key = (t.untyped_storage().data_ptr(), t.device.type)
        n = t.untyped_storage().nbytes()
    except (RuntimeError, NotImplementedError):  # pragma: no cover - exotic tensor subclasses
        key, n = (id(t), "obj"), t.numel() * t.element_size()
    if key in seen:
        return 0
    seen.add(key)
    return n


def _quant_state_bytes(qs, seen: set) -> int:
    total = 0
    for name in ("absmax", "code"):
        total += _tensor_bytes(getattr(qs, name, None), seen)
    nested = getattr(qs, "state2", None)
    if nested is not None:
        total += _quant_state_bytes(nested, seen)
    offset = getattr(qs, "offset", None)
    total += _tensor_bytes(offset, seen)
    return total


def memory_report(model) -> dict[str, Any]:
    """Real in-memory size of a model and effective bits per weight of its decoder linears.

    Returns `bytes_in_memory` (parameters + buffers + bnb scales, shared storage counted once),
    `linear_weights` (number of weights in the Linear layers inside the decoder layers),
    `linear_bytes` (bytes they occupy, scales included), `bits_per_weight` (8 * linear_bytes /
    linear_weights) and `n_params` (logical parameter count: packed 4-bit weights counted by
    their real shape).
    """
    import torch

    seen: set = set()
    total = 0
    for p in model.parameters():
        total += _tensor_bytes(p, seen)
        qs = getattr(p, "quant_state", None)
        if qs is not None:
            total += _quant_state_bytes(qs, seen)
        total += _tensor_bytes(getattr(p, "SCB", None), seen)
    for b in model.buffers():
        total += _tensor_bytes(b, seen)

    lin_seen: set = set()
    lin_weights = 0
    lin_bytes = 0
    n_params = 0
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if not isinstance(w, torch.Tensor):
            continue
        qs = getattr(w, "quant_state", None)
        shape = tuple(getattr(qs, "shape", ())) if qs is not None else tuple(w.shape)
        numel = 1
        for d in shape:
            numel *= int(d)
        if ".layers." in f".{name}." and isinstance(mod, torch.nn.Linear):
            lin_weights += numel
            lin_bytes += _tensor_bytes(w, lin_seen)
            if qs is not None:
                lin_bytes += _quant_state_bytes(qs, lin_seen)
            lin_bytes += _tensor_bytes(getattr(w, "SCB", None), lin_seen)
    param_seen: set = set()
    for p in model.parameters():
        key = id(p)
        if key in param_seen:
            continue
        param_seen.add(key)
        qs = getattr(p, "quant_state", None)
        if qs is not None and getattr(qs, "shape", None) is not None:
            k = 1
            for d in qs.shape:
                k *= int(d)
            n_params += k
        else:
            n_params += p.numel()
    return {
        "bytes_in_memory": int(total),
        "n_params": int(n_params),
        "linear_weights": int(lin_weights),
        "linear_bytes": int(lin_bytes),
        "bits_per_weight": (8.0 * lin_bytes / lin_weights) if lin_weights else None,
    }
