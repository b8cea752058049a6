"""Device and dtype choice: CUDA > MPS > CPU; half precision on accelerators, fp32 on CPU."""

from __future__ import annotations

import torch

from ..errors import CtrustError
from ..validate import check_device


def pick_device(requested: str | None = "auto") -> torch.device:
    req = check_device(requested)  # the one name check, shared with the CLI (which runs it before loading)
    if req == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if req.startswith("cuda") and not torch.cuda.is_available():
        raise CtrustError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if req == "mps" and not torch.backends.mps.is_available():
        raise CtrustError("device 'mps' requested but MPS is not available; use --device cpu or auto")
    return torch.device(req)


def pick_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def free_memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None
